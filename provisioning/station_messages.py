"""Every message the provisioning station can show, for the catalogue check (and pybabel).

Template strings are `_("...")`; Python strings are the first argument of gettext calls and
of the errors the station's views turn into page messages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates" / "station"
SOURCES = ("station.py", "enrolment_desk.py", "station_accounts.py", "facilities.py")
ERROR_NAMES = {"EnrolmentRefused", "NotFound", "InvalidRequest", "AlreadyExists",
               "SignInRefused", "gettext", "_"}
# Shown through _(value): facility kinds.
DYNAMIC = ("clinic", "pharmacy")
# Raised by the key store when the station revokes a node.
KEYSTORE = ("Node %(node_id)s is not in this store.", "Node %(node_id)s is revoked already.")
TEMPLATE_RE = re.compile(r'_\("((?:[^"\\]|\\.)*)"\)')


def station_messages() -> list[str]:
    found: list[str] = [*DYNAMIC, *KEYSTORE]
    for template in sorted(TEMPLATES.glob("*.html")):
        found += TEMPLATE_RE.findall(template.read_text(encoding="utf-8"))
    for name in SOURCES:
        tree = ast.parse((HERE / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in ERROR_NAMES:
                    found.append(node.args[0].value)
    return list(dict.fromkeys(found))
