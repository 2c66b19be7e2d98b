"""A version's history link and its document's seal are made from one copy of its settings,
sealed secrets taken out once (storage.chain.settings_parts). Each must still equal, byte for
byte, what the chain makes from the stored entry or the stored document alone, as verification
and key rotation make them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo.database import Database

from ehr_gateway.storage.chain import GENESIS, document_seal, history_link
from ehr_gateway.storage.repository import HISTORY, SEAL, SETTINGS, sealed_content
from ehr_gateway.storage.secrets import SecretBox, stored_secrets
from tests.storage.test_audit_chain import intruder, written  # noqa: F401 (fixtures)


async def test_each_link_and_seal_equals_the_one_made_from_the_stored_copy_alone(
    written: str,  # noqa: F811
    intruder: Database[dict[str, Any]],  # noqa: F811
    tmp_path: Path,
) -> None:
    keys = SecretBox.from_data_dir(tmp_path).chain
    entries = list(intruder[HISTORY].find({"tenantId": written}, sort=[("version", 1)]))
    assert [entry["version"] for entry in entries] == [1, 2, 3, 4]
    # The versions carry a sealed secret (the SOAP password), which the hash leaves out and
    # the MAC covers.
    assert all(list(stored_secrets(entry["settings"])) for entry in entries[1:])
    prev = GENESIS
    for entry in entries:
        assert history_link(entry, prev, keys) == entry["chain"], entry["version"]
        prev = entry["chain"]["hash"]
    document = intruder[SETTINGS].find_one({"_id": written})
    assert document is not None and document["version"] == 4
    assert document_seal(sealed_content(document), keys) == document[SEAL]
