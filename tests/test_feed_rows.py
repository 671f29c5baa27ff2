"""Feed rows built when a lead is written (migration 007), against the rows 005 built at read time: the same text
after every kind of write, UTC whatever the writer's session, a renamed CRE re-fed, dictionary ids dense and never
given twice. Real server, real PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from serverproc import Api, new_lead, phone_for

from crm_desktop.core.feed import decode_page

CRE1, LEAD = "cre1@demo.local", "lead@demo.local"

# 005's lead_changes rows, built from the live tables at read time (the reference the stored rows must equal).
ON_THE_FLY = """
    select json_agg(json_build_array(l.change_id, l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status,
                                     l.final_status, c.full_name, s.full_name, l.branch, l.created_at,
                                     l.follow_up_date, l.cre_id, l.lead_category, l.model_interested, l.follow_up_at,
                                     l.last_call_at, l.call_count, l.won_at, l.lost_at, l.updated_at,
                                     l.test_drive_done, s.email) order by l.change_id)::text
      from leads l
      left join profiles c on c.id = l.cre_id
      left join profiles s on s.id = l.ps_id
"""


def all_pages(api: Api, token: str, rpc: str, since: int = 0) -> tuple[list[str], int]:
    """Every page of `rpc` after `since` as text, and the cursor after them."""
    pages = []
    while True:
        r = api.rpc(rpc, token, since=since, max_rows=7)
        assert r.status_code == 200, r.text
        pages.append(r.text)
        page = json.loads(r.text)
        since = page["next_since"]
        if not page["more"]:
            return pages, since


def rows_by_id(pages: list[str]) -> dict[int, dict[str, Any]]:
    out = {}
    for text in pages:
        page = json.loads(decode_page(text))
        for row in page["rows"]:
            r = dict(zip(page["columns"], row, strict=True))
            out[r["lead_id"]] = r
    return out


def a_day_of_writes(api: Api, db: psycopg.Connection[Any]) -> list[int]:
    """One lead of each kind of write the contract has: create, a repeat caller's new source, calls (with a PS
    hand-off, a test drive, a follow-up time, Won), a reassignment, a campaign import."""
    t1, tl = api.token(CRE1), api.token(LEAD)
    ids = []
    for n in range(3):
        r = api.rpc("create_lead", t1, lead=new_lead(phone_for(700 + n), customer_name=f'Lëad "{n}" \\ ఆశ'))
        assert r.status_code == 200, r.text
        ids.append(r.json()["lead_id"])
    r = api.rpc("create_lead", t1, lead=new_lead(phone_for(700), source="OEM", sub_source="Web"))
    assert r.json()["outcome"] == "added_source", r.text
    at = datetime.now(UTC)
    for lead_id, extra in [
        (ids[0], {"ps_email": "ps1@demo.local", "test_drive_done": True, "follow_up_at": "2026-12-24T16:00:00+05:30"}),
        (ids[1], {"final_status": "Won", "lead_category": "Hot", "model_interested": "450 Apex STD"}),
    ]:
        call = {"client_ref": str(uuid.uuid4()), "lead_id": lead_id, "called_at": at.isoformat(),
                "lead_status": "Interested", "final_status": "Pending"} | extra  # fmt: skip
        r = api.rpc("log_call", t1, call=call)
        assert r.status_code == 200, r.text
    r = api.rpc("assign_leads", tl, lead_ids=[ids[2]], cre_email="cre2@demo.local")
    assert r.json()["assigned"] == 1, r.text
    rows = [{"customer_name": f"Campaign {i}", "phone": phone_for(800 + i)} for i in range(5)]
    batch = {"client_ref": str(uuid.uuid4()), "source": "META", "sub_source": "Meta Know", "branch": "KOMPALLY",
             "assign_to": None, "rows": rows}  # fmt: skip
    r = api.rpc("import_leads", tl, batch=batch)
    assert r.json()["created"] == 5, r.text
    # A writer whose session is not in UTC (PostgREST lets a client ask for a time zone): the stored row is UTC.
    with db.transaction():
        db.execute("set local timezone = 'Asia/Kolkata'")
        db.execute("update leads set updated_at = updated_at + interval '1 second', change_id = null where id = %s",
                   (ids[1],))  # fmt: skip
    return ids


def test_the_stored_rows_are_the_rows_005_built_at_read_time(api: Api, clean_db):
    ids = a_day_of_writes(api, clean_db)
    t1 = api.token(CRE1)
    pages, _ = all_pages(api, t1, "lead_changes")
    clean_db.execute("set timezone = 'UTC'")
    reference = json.loads(clean_db.execute(ON_THE_FLY).fetchone()[0])
    served = [row for text in pages for row in json.loads(text)["rows"]]
    assert served == reference and len(served) == 3 + 5
    # Rendered the same from a session in another time zone (the sequencer runs in whichever desk's session pulls).
    with clean_db.transaction():
        clean_db.execute("set local timezone = 'Asia/Kolkata'")
        ist = clean_db.execute(
            "select r.id, '[' || l.change_id || ', ' || r.plain from _feed_rows_of(%s) r join leads l on l.id = r.id"
            " order by r.id",
            (ids,),
        ).fetchall()
    stored = clean_db.execute("select id, feed_row::text from leads where id = any(%s) order by id", (ids,)).fetchall()
    assert ist == stored
    # Byte for byte: the page's rows are 005's json_agg text (an old desk reads the same bytes).
    whole = api.rpc("lead_changes", t1, since=0, max_rows=100).text
    assert '"rows" : ' + clean_db.execute(ON_THE_FLY).fetchone()[0] + ", " in whole
    # The compact feed decodes to the same values (its dictionaries hold ids of feed_values).
    compact, _ = all_pages(api, t1, "lead_feed")
    by_id = rows_by_id(compact)
    columns = json.loads(pages[0])["columns"]
    assert by_id == {r[1]: dict(zip(columns, r, strict=True)) for r in reference}
    assert by_id[ids[0]]["ps_email"] == "ps1@demo.local" and by_id[ids[0]]["test_drive_done"] is True
    assert by_id[ids[0]]["follow_up_at"] == "2026-12-24T10:30:00+00:00"
    assert by_id[ids[1]]["final_status"] == "Won" and by_id[ids[1]]["updated_at"].endswith("+00:00")
    assert [s["source"] for s in by_id[ids[0]]["sources"]] == ["GOOGLE", "OEM"]


def test_the_columns_layout_is_the_rows_layout_transposed(api: Api, clean_db):
    """lead_feed(layout => 'columns') (008) sends each page's rows column by column: the same head, and "cols" holds
    exactly the transposed "rows" of the same call with the default layout (the same text for every cell)."""
    a_day_of_writes(api, clean_db)
    t1 = api.token(CRE1)
    since, pages = 0, 0
    while True:
        rows = api.rpc("lead_feed", t1, since=since, max_rows=3)
        cols = api.rpc("lead_feed", t1, since=since, max_rows=3, layout="columns")
        assert rows.status_code == cols.status_code == 200, cols.text
        by_row, by_col = json.loads(rows.text), json.loads(cols.text)
        assert by_col.pop("cols") == [list(c) for c in zip(*by_row.pop("rows"), strict=True)]
        assert by_col == by_row
        pages += 1
        since = by_row["next_since"]
        if not by_row["more"]:
            break
    assert pages >= 3
    empty = json.loads(api.rpc("lead_feed", t1, since=since, layout="columns").text)
    assert empty["cols"] == [[]] * len(empty["columns"]) and not empty["more"]
    bad = api.rpc("lead_feed", t1, since=0, layout="diagonal")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_layout", bad.text


def test_a_renamed_cre_reaches_every_desk_with_the_new_name(api: Api, clean_db):
    t1 = api.token(CRE1)
    ids = a_day_of_writes(api, clean_db)
    _, cursor = all_pages(api, t1, "lead_changes")
    cre1 = clean_db.execute("select id, full_name from profiles where email = %s", (CRE1,)).fetchone()
    owned = {i for (i,) in clean_db.execute("select id from leads where cre_id = %s", (cre1[0],)).fetchall()}
    assert ids[0] in owned and ids[2] not in owned
    try:
        clean_db.execute("update profiles set full_name = 'Asha R. Rao' where id = %s", (cre1[0],))
        pages, _ = all_pages(api, t1, "lead_changes", cursor)
        rows = rows_by_id(pages)
        assert set(rows) == owned  # exactly their leads, once more
        assert {r["cre_name"] for r in rows.values()} == {"Asha R. Rao"}
        compact, _ = all_pages(api, t1, "lead_feed", cursor)
        assert rows_by_id(compact) == rows
        # Nothing else changed: a second rename to the same name re-feeds nothing.
        clean_db.execute("update profiles set full_name = 'Asha R. Rao' where id = %s", (cre1[0],))
        assert json.loads(api.rpc("lead_changes", t1, since=max(r["change_id"] for r in rows.values())).text)[
            "rows"] == []  # fmt: skip
    finally:
        clean_db.execute("update profiles set full_name = %s where id = %s", (cre1[1], cre1[0]))


def test_dictionary_ids_are_dense_and_one_per_value_under_concurrent_sequencers(api: Api, clean_db):
    """Two transactions adding new dictionary values at once: the second waits for the first to commit and takes the
    next id (without the lock it would take the same id and fail on the unique index); a rolled-back id is given
    again. Values outside the catalogue are written by hand here (the RPCs would refuse them)."""
    t1 = api.token(CRE1)
    ids = []
    for n in range(3):
        r = api.rpc("create_lead", t1, lead=new_lead(phone_for(900 + n)))
        ids.append(r.json()["lead_id"])
    tag = uuid.uuid4().hex[:8]
    for lead_id, model in zip(ids, ["A", "B", "C"], strict=True):
        clean_db.execute("update leads set model_interested = %s, change_id = null where id = %s",
                         (f"Test {tag} {model}", lead_id))  # fmt: skip
    top = clean_db.execute("select coalesce(max(id), -1) from feed_values where kind = 'model_interested'").fetchone()
    second: dict[str, Any] = {}
    try:
        with psycopg.connect(api.server.database_url) as a:
            a.execute("select _feed_values_add(%s)", ([ids[0]],))

            def other() -> None:
                try:
                    with psycopg.connect(api.server.database_url, autocommit=True) as b:
                        b.execute("select _feed_values_add(%s)", ([ids[1]],))
                        second["done"] = True
                except psycopg.Error as exc:
                    second["error"] = exc

            t = threading.Thread(target=other)
            t.start()
            t.join(0.5)
            assert t.is_alive()  # waiting for the first one's new value to commit or roll back
            a.commit()
            t.join(10)
        assert second == {"done": True}
        with psycopg.connect(api.server.database_url) as c:
            c.execute("select _feed_values_add(%s)", ([ids[2]],))
            c.rollback()
        clean_db.execute("select _feed_values_add(%s)", (ids,))  # C again, after the rollback; A and B are there
        got = dict(clean_db.execute(
            "select value, id from feed_values where kind = 'model_interested' and value like %s", (f"Test {tag} %",)
        ).fetchall())  # fmt: skip
        assert got == {f"Test {tag} A": top[0] + 1, f"Test {tag} B": top[0] + 2, f"Test {tag} C": top[0] + 3}
        for name, count, most in clean_db.execute("select kind, count(*), max(id) from feed_values group by kind"):
            assert count == most + 1, name
        # And the feed serves them.
        pages, _ = all_pages(api, t1, "lead_feed")
        assert {rows_by_id(pages)[i]["model_interested"] for i in ids} == {f"Test {tag} {m}" for m in "ABC"}
    finally:
        clean_db.execute(
            "delete from feed_values where kind = 'model_interested' and value like %s", (f"Test {tag} %",)
        )


def test_numbered_leads_without_their_rows_are_rendered_when_read(api: Api, clean_db):
    """The seed numbers its leads itself, and leads from before 007 had no rows: a page renders what it lacks."""
    ids = a_day_of_writes(api, clean_db)
    t1 = api.token(CRE1)
    all_pages(api, t1, "lead_changes")  # numbered and rendered
    expected = rows_by_id(all_pages(api, t1, "lead_changes")[0])
    clean_db.execute("update leads set feed_row = null, feed_cols = null where id = any(%s)", (ids,))
    assert rows_by_id(all_pages(api, t1, "lead_feed")[0]) == expected
    clean_db.execute("update leads set feed_row = null, feed_cols = null")
    assert rows_by_id(all_pages(api, t1, "lead_changes")[0]) == expected
    assert clean_db.execute("select count(*) from leads where feed_row is null").fetchone() == (0,)
