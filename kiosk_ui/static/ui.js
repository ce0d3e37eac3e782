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

  /* Kiosk idle timer: no touch for N seconds ends the session and clears the screen. */
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  var endForm = document.getElementById("idle-end");
  if (idle > 0 && endForm) {
    var aliveUrl = body.getAttribute("data-alive-url");
    var pingEvery = Math.max(1000, idle * 250);  /* tell the server about touches, 4 per period */
    var lastPing = Date.now();
    var timer = null;
    var reset = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { endForm.submit(); }, idle * 1000);
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
})();
