"""The drug catalogue is sync_protocol's package data, read by node and hub through one loader."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from central_hub.fhir.mapping import atc_of_inn
from central_hub.reconciliation import e_prescription_inns
from edge_node.catalogue import Catalogue
from sync_protocol import drug_catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_node_and_hub_read_the_same_shipped_file():
    drugs = drug_catalogue.read_drugs()
    node = Catalogue.load()
    assert {drug.inn for drug in node} == set(drugs)
    assert e_prescription_inns() == frozenset(
        inn.casefold() for inn, d in drugs.items() if d.get("requires_e_prescription"))
    assert atc_of_inn() == {inn.casefold(): d["atc"] for inn, d in drugs.items() if d.get("atc")}
    assert e_prescription_inns() and atc_of_inn()  # the flags the hub needs are there


def test_the_catalogue_is_declared_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/drugs.json" in config["tool"]["setuptools"]["package-data"]["sync_protocol"]
    assert drug_catalogue.CATALOGUE.is_file()
    assert not (ROOT / "edge_node" / "data" / "drugs.json").exists()  # one copy only


def test_read_drugs_from_another_source(tmp_path):
    path = tmp_path / "drugs.json"
    path.write_text(json.dumps({"version": "t", "drugs": {"Amoxicillin": {"atc": "J01CA04"}}}),
                    encoding="utf-8")
    assert drug_catalogue.read_drugs(path) == {"Amoxicillin": {"atc": "J01CA04"}}
    path.write_text("{}", encoding="utf-8")
    assert atc_of_inn(path) == {}  # the hub serves allergies without ATC codes, not an error
