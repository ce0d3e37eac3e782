/* DMED Edge screens: the little JavaScript the pages use. Every page works without it,
   except the kiosk's idle timer (the server ends idle sessions on its own as well). */
(function () {
  "use strict";

  /* Keypad: edit the field in the page instead of a round trip per key. */
  document.querySelectorAll("form[data-keypad]").forEach(function (form) {
    var display = form.querySelector("[data-keypad-display]");
    var count = form.querySelector("[data-keypad-count]");
    var max = parseInt(display.getAttribute("maxlength") || "32", 10);
    function show() { if (count) { count.textContent = String(display.value.length); } }
    form.querySelectorAll("button[data-key]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        var key = button.getAttribute("data-key");
        if (key === "back") { display.value = display.value.slice(0, -1); }
        else if (key === "clear") { display.value = ""; }
        else if (display.value.length < max) { display.value += key; }
        show();
      });
    });
    display.addEventListener("input", function () {
      display.value = display.value.replace(/\D/g, "").slice(0, max);
      show();
    });
  });

  /* Kiosk idle timer: no touch for N seconds ends the session and clears the screen. The
     last W seconds (data-idle-warning) show a warning with a countdown; any touch goes on. */
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  var warnFor = parseInt(body.getAttribute("data-idle-warning") || "0", 10);
  if (warnFor * 2 > idle) { warnFor = 0; }  /* a limit this short (tests) leaves no time to warn */
  var endForm = document.getElementById("idle-end");
  if (idle > 0 && endForm) {
    var aliveUrl = body.getAttribute("data-alive-url");
    var pingEvery = Math.max(1000, idle * 250);  /* tell the server about touches, 4 per period */
    var lastPing = Date.now();
    var timer = null;
    var warnTimer = null;
    var ticker = null;
    var warning = document.getElementById("idle-warning");
    var counter = warning && warning.querySelector("[data-idle-count]");
    var deadline = 0;
    var showWarning = function () {
      if (!warning || !counter) { return; }
      var tick = function () {
        counter.textContent = String(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      };
      tick();
      warning.hidden = false;
      ticker = window.setInterval(tick, 250);
    };
    var reset = function () {
      window.clearTimeout(timer);
      window.clearTimeout(warnTimer);
      window.clearInterval(ticker);
      if (warning) { warning.hidden = true; }
      deadline = Date.now() + idle * 1000;
      timer = window.setTimeout(function () { endForm.submit(); }, idle * 1000);
      if (warnFor > 0) { warnTimer = window.setTimeout(showWarning, (idle - warnFor) * 1000); }
      if (aliveUrl && Date.now() - lastPing > pingEvery) {
        lastPing = Date.now();
        window.fetch(aliveUrl, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) {
            if (response.redirected) { window.location.replace(response.url); }
          })
          .catch(function () { /* the node is on the LAN; a lost ping changes nothing */ });
      }
    };
    ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
      document.addEventListener(name, reset, { passive: true });
    });
    var goOn = warning && warning.querySelector("[data-idle-continue]");
    if (goOn) { goOn.addEventListener("click", reset); }
    reset();
  }

  /* Print buttons on slips and prescriptions. */
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  /* ICD-10 suggestions under the doctor's search box (the Search button works without). */
  document.querySelectorAll("input[data-icd-suggest]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-icd-suggest");
    var pending = null;
    input.addEventListener("input", function () {
      window.clearTimeout(pending);
      var query = input.value.trim();
      if (query.length < 2 || !list) { return; }
      pending = window.setTimeout(function () {
        window.fetch(url + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (data) {
            list.textContent = "";
            (data.results || []).forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.code;
              option.label = item.code + " " + item.description;
              list.appendChild(option);
            });
          })
          .catch(function () { /* suggestions are optional */ });
      }, 200);
    });
  });
  /* Pharmacy counter: the scanner types into whatever holds the focus, so the scan input
     takes it back whenever nothing else that takes typing has it (after each verdict too). */
  var scanner = document.querySelector("input[data-scanner-input]");
  if (scanner && document.querySelector("form[data-scanner-form]")) {
    var typing = function (el) {
      return el && el !== scanner && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
        (el.tagName === "INPUT" && el.type !== "hidden" && el.type !== "submit"));
    };
    if (!typing(document.activeElement)) { scanner.focus(); }
    document.addEventListener("focusout", function () {
      window.setTimeout(function () {
        if (!typing(document.activeElement)) { scanner.focus(); }
      }, 0);
    });
  }

  /* MRZ readers type the zone line by line, each line ended by Enter: inside a one-line box
     Enter would send the first line alone, so it is swallowed while the text is a partial
     zone (30 or 60 characters of an ID card, 44 of a passport, with its "<" fillers, or "Б"
     when the Russian layout was on). */
  document.querySelectorAll("input[data-mrz-input]").forEach(function (input) {
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      var text = input.value.replace(/\s/g, "");
      var partial = text.length === 30 || text.length === 60 || text.length === 44;
      if (partial && /[<Бб]/.test(text)) { event.preventDefault(); }
    });
  });

  /* At the kiosk the card reader types while the patient's finger is on the keypad: keys
     typed with no text field focused go to the MRZ box, which sends itself when whole. */
  var capture = document.querySelector("input[data-mrz-capture]");
  if (capture) {
    document.addEventListener("keydown", function (event) {
      var el = document.activeElement;
      // A zone starts with a letter (I, A, C or P; Ш or З under the Russian layout): one
      // typed into the keypad's digits box moves the typing to the MRZ box.
      if (el && el.hasAttribute("data-keypad-display") && event.key.length === 1 &&
          !/[0-9]/.test(event.key)) {
        capture.focus();
        el = capture;
        capture.value += event.key;
        event.preventDefault();
        return;
      }
      if (el && el !== capture && (el.tagName === "INPUT" || el.tagName === "TEXTAREA")) { return; }
      if (event.key.length === 1 && el !== capture) {
        capture.value += event.key;
        event.preventDefault();
      } else if (event.key === "Enter" && el !== capture) {
        var text = capture.value.replace(/\s/g, "");
        event.preventDefault();
        if (text.length === 90 || text.length === 88) { capture.form.submit(); }
      }
    });
  }

  /* Prescription form: drug suggestions under the INN box as the doctor types. Each is a
     submit button "pick" of the form, exactly as the server renders them after "Find". */
  document.querySelectorAll("input[data-drug-suggest]").forEach(function (input) {
    var box = document.querySelector("[data-suggestions='" + input.getAttribute("data-row") + "']");
    var url = input.getAttribute("data-drug-suggest");
    var pending = null;
    input.addEventListener("input", function () {
      window.clearTimeout(pending);
      var query = input.value.trim();
      if (query.length < 2 || !box) { return; }
      pending = window.setTimeout(function () {
        var sep = url.indexOf("?") < 0 ? "?" : "&";
        window.fetch(url + sep + "q=" + encodeURIComponent(query), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (data) {
            box.textContent = "";
            (data.results || []).forEach(function (drug) {
              var button = document.createElement("button");
              button.type = "submit";
              button.name = "pick";
              button.value = input.getAttribute("data-row") + ":" + drug.inn;
              button.className = "choice-row" + (drug.refused ? " refused" : "");
              var strong = document.createElement("strong");
              strong.textContent = drug.inn;
              button.appendChild(strong);
              button.appendChild(document.createTextNode(" " + drug.name));
              (drug.badges || []).forEach(function (badge) {
                var tag = document.createElement("span");
                tag.className = "tag tag-" + badge.tone;
                tag.textContent = badge.text;
                button.appendChild(document.createTextNode(" "));
                button.appendChild(tag);
              });
              box.appendChild(button);
            });
          })
          .catch(function () { /* suggestions are optional: the Find button works */ });
      }, 150);
    });
  });

  /* A choice that changes other choices (a drug's form -> its strengths) updates the page. */
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      var refresh = select.form && select.form.querySelector("[data-refresh]");
      if (refresh && select.form.requestSubmit) { select.form.requestSubmit(refresh); }
    });
  });
})();
