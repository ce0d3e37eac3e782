"""The drug catalogue as shipped data: `data/drugs.json`, one file that node and hub both read.

The node validates it in full and prescribes from it (edge_node.catalogue); the hub reads the
flags it needs (requires_e_prescription for paper reconciliation, ATC codes for FHIR). It is
package data of sync_protocol, so an installed hub finds it without a node's source tree.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

log = logging.getLogger(__name__)

CATALOGUE: Traversable = resources.files(__package__) / "data" / "drugs.json"


def read_drugs(source: Traversable | Any = CATALOGUE) -> dict[str, dict[str, Any]]:
    """The catalogue's drugs by INN, parsed but not validated (edge_node.catalogue does that).

    `source` is anything with read_text (a path or a package resource); OSError, ValueError
    (bad JSON) and KeyError (no "drugs") reach the caller, who decides what a missing
    catalogue means for it.
    """
    return json.loads(source.read_text(encoding="utf-8"))["drugs"]
