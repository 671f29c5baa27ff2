"""A desk process for the crash test: queue N more leads (unless told 0), then drain the outbox until empty.

Run as `python outbox_driver.py URL ANON_KEY STORE_PATH EMAIL N PHONE_BASE`; the test SIGKILLs it at random moments
while it drains."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from serverproc import new_lead, phone_for

from crm_desktop.core.api import ApiClient
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine


def main() -> int:
    url, anon_key, store_path, email, n, base = sys.argv[1:7]
    path = Path(store_path)
    store, _ = Store.open_or_rebuild(path)
    already = len(store.items())
    for i in range(int(n)):
        store.enqueue(new_lead(phone_for(int(base) + already + i)))
    api = ApiClient(url, anon_key)
    api.login(email, "demo1234")
    engine = SyncEngine(api, path, poll_interval=60)
    engine.start()
    print("draining", flush=True)
    deadline = time.time() + 60
    while store.pending_count() and time.time() < deadline:
        time.sleep(0.02)
    engine.stop()
    print("drained" if store.pending_count() == 0 else "timeout", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
