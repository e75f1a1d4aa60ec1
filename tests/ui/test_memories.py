"""The memory browser over a real store: edit and undo, delete and search, vault masking,
provenance, the tree view, sorting and validation messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt

from storage.records import EpisodicMemory, Event, MemoryType, SemanticMemory, VaultEntry


def _loaded(qtbot, browser, memory_type: MemoryType, query: str = "") -> None:
    tab = browser.tab_index(memory_type)
    if browser.tabs.currentIndex() != tab:
        browser.tabs.setCurrentIndex(tab)
    browser.search.setText(query)  # after: each tab keeps its own search text
    before = browser._load_seq
    browser.reload()
    qtbot.waitUntil(
        lambda: browser._load_seq == before + 1 and not browser.controller.tasks.running(),
        timeout=5_000,
    )


def _titles(browser) -> list[str]:
    return [r.headline() for r in browser.model.records()]


def test_edit_a_memory_then_undo(qtbot, engram):
    services = engram.controller.services
    fact = services.add(SemanticMemory(name="Train", summary="The train leaves at 8:15")).record
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    assert browser.select(fact.id)

    browser.buttons["edit"].click()
    qtbot.waitUntil(lambda: browser.dialog is not None)
    dialog = browser.dialog
    dialog.set_value("summary", "The train leaves at 8:45")
    dialog.accept()
    qtbot.waitUntil(lambda: services.get(fact.id).summary == "The train leaves at 8:45")
    qtbot.waitUntil(lambda: "Train: The train leaves at 8:45" in _titles(browser))

    browser.buttons["undo"].click()
    qtbot.waitUntil(lambda: services.get(fact.id).summary == "The train leaves at 8:15")
    qtbot.waitUntil(lambda: "Train: The train leaves at 8:15" in _titles(browser))
    assert [c.op for c in services.history_of(fact.id)] == ["undo", "update", "create"]


def test_history_dialog_undoes_the_chosen_change(qtbot, engram):
    services = engram.controller.services
    fact = services.add(SemanticMemory(name="Desk", summary="Desk is on floor 2")).record
    services.replace(services.get(fact.id).updated(summary="Desk is on floor 3"))
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.select(fact.id)
    browser.buttons["history"].click()
    qtbot.waitUntil(lambda: browser.dialog is not None)
    assert browser.dialog.table.rowCount() == 2
    browser.dialog.table.selectRow(0)  # the update
    browser.dialog.undo_button.click()
    qtbot.waitUntil(lambda: services.get(fact.id).summary == "Desk is on floor 2")


def test_delete_and_it_is_gone_from_search(qtbot, engram):
    services = engram.controller.services
    zebra = services.add(
        SemanticMemory(name="Zebra", summary="zebra crossing near the office")
    ).record
    services.add(SemanticMemory(name="Lunch", summary="lunch at the zebra cafe on fridays"))
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC, "zebra crossing")
    assert zebra.id in [r.id for r in browser.model.records()]
    assert (
        browser.model.headerData(
            browser.model.columnCount() - 1, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole
        )
        == "Score"
    )
    browser.select(zebra.id)
    browser.buttons["delete"].click()
    qtbot.waitUntil(lambda: "Deleted" in browser.status.text(), timeout=5_000)

    _loaded(qtbot, browser, MemoryType.SEMANTIC, "zebra crossing")
    assert zebra.id not in [r.id for r in browser.model.records()]
    assert zebra.id not in [h.record.id for h in services.search("zebra crossing")]


def test_add_explains_a_bad_value_and_stays_open(qtbot, engram):
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.buttons["add"].click()
    dialog = browser.dialog
    dialog.accept()  # nothing filled in
    assert dialog.isVisible() and "needs some text" in dialog.message.text()
    dialog.set_value("name", "Empty")
    dialog.set_value("summary", "x" * 100_001)
    dialog.accept()
    assert dialog.isVisible() and "Summary: " in dialog.message.text()
    assert "the limit is 100,000" in dialog.message.text()
    dialog.set_value("summary", "Now it has one")
    dialog.tree.setText("notes/misc")
    dialog.accept()
    qtbot.waitUntil(lambda: "Empty: Now it has one" in _titles(browser))
    added = next(r for r in browser.model.records() if r.headline() == "Empty: Now it has one")
    assert added.tree_path == ("notes", "misc")


def test_a_save_the_vector_index_refuses_is_kept_with_a_warning(qtbot, engram, monkeypatch):
    """Saved in SQLite, so no error (which would have the user save it again, as a copy): the
    status line says it is saved and warns that the vector index is behind."""
    store = engram.controller.services.store()

    def refuse(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store._index, "upsert", refuse)
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.buttons["add"].click()
    dialog = browser.dialog
    dialog.set_value("name", "Desk")
    dialog.set_value("summary", "Desk is on floor 2")
    dialog.accept()
    qtbot.waitUntil(lambda: "Warning: saved, but the vector index" in browser.status.text())
    assert browser.status.text().startswith("Saved “Desk: Desk is on floor 2”.")
    assert "No space left on device" in browser.status.text()
    assert _titles(browser) == ["Desk: Desk is on floor 2"] and store.count() == 1
    assert store.stats()["unindexed"] == 1


def test_vault_values_are_masked_until_revealed(qtbot, engram):
    services = engram.controller.services
    key = services.add(VaultEntry(caption="Wi-Fi password", secret_value="hunter2-secret")).record
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.KNOWLEDGE_VAULT)
    row = browser.model.row_of(key.id)
    secret = browser.model.index(row, 1)
    assert browser.model.data(secret) == VaultEntry.MASK
    assert "hunter2" not in browser.details.toPlainText()
    browser.select(key.id)
    assert browser.buttons["reveal"].isEnabled()
    browser.buttons["reveal"].click()
    qtbot.waitUntil(lambda: browser.model.data(secret) == "hunter2-secret")
    assert "hunter2-secret" in browser.details.toPlainText()
    browser.buttons["reveal"].click()  # hide again
    assert browser.model.data(secret) == VaultEntry.MASK


def test_why_do_i_know_this_shows_the_source_events(qtbot, engram):
    services = engram.controller.services
    event = Event(
        source="screen",
        app="firefox",
        window_title="Tickets — Rail",
        text="Your train to Lyon departs 08:15 from platform 4",
    )
    services.store().events.put(event)
    trip = services.add(
        EpisodicMemory(summary="Booked a train to Lyon", provenance=(event.id, "D1:3"))
    ).record
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.EPISODIC)
    browser.select(trip.id)
    browser.buttons["why"].click()
    qtbot.waitUntil(lambda: browser.dialog is not None)
    table = browser.dialog.table
    cells = [table.item(0, c).text() for c in range(4)]
    assert cells[1:] == [
        "firefox",
        "Tickets — Rail",
        "Your train to Lyon departs 08:15 from platform 4",
    ]
    assert "D1:3" in " ".join(w.text() for w in browser.dialog.findChildren(type(browser.status)))


def test_tree_view_follows_tree_path_and_columns_sort(qtbot, engram):
    services = engram.controller.services
    now = datetime.now(UTC)
    services.add(
        EpisodicMemory(
            summary="b standup",
            occurred_at=now - timedelta(hours=2),
            tree_path=("work", "meetings"),
        )
    )
    services.add(
        EpisodicMemory(summary="a gym", occurred_at=now - timedelta(hours=1), tree_path=("health",))
    )
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.EPISODIC)
    browser.view_mode.setCurrentIndex(1)
    tree = browser.tree.model()
    top = sorted(tree.item(r, 0).text() for r in range(tree.rowCount()))
    assert top == ["health", "work"]
    work = next(tree.item(r, 0) for r in range(tree.rowCount()) if tree.item(r, 0).text() == "work")
    assert work.child(0, 0).text() == "meetings"
    assert work.child(0, 0).child(0, 0).text() == "b standup"

    def shown() -> list[str]:
        proxy = browser.proxy
        return [proxy.index(r, 1).data() for r in range(proxy.rowCount())]

    assert shown() == ["a gym", "b standup"]  # newest first
    browser.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)  # by summary, A→Z
    assert shown() == ["a gym", "b standup"]
    browser.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert shown() == ["b standup", "a gym"]
    browser.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # by time, oldest first
    assert shown() == ["b standup", "a gym"]


def test_time_filter_hides_older_memories(qtbot, engram):
    services = engram.controller.services
    services.add(
        EpisodicMemory(summary="old trip", occurred_at=datetime.now(UTC) - timedelta(days=40))
    )
    services.add(EpisodicMemory(summary="fresh coffee"))
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.EPISODIC)
    assert sorted(_titles(browser)) == ["fresh coffee", "old trip"]
    browser.when.setCurrentIndex(2)  # past 7 days
    qtbot.waitUntil(lambda: _titles(browser) == ["fresh coffee"])


def test_reindex_shows_progress_in_the_status_bar(qtbot, engram):
    services = engram.controller.services
    services.store().add_many([SemanticMemory(name=f"n{i}", summary=f"fact {i}") for i in range(5)])
    progress: list[tuple[int, int]] = []
    engram.controller.tasks.progress.connect(lambda _label, d, t: progress.append((d, t)))
    window = engram.window
    window.reindex()
    assert "Re-indexing" in window.activity_label.text()
    qtbot.waitUntil(lambda: window.activity_label.text() == "Re-indexed 5 memories.")
    assert progress and progress[-1] == (5, 5)
    assert window.progress.maximum() == 5


def test_a_suggestion_shows_a_badge_and_is_accepted_or_dismissed(qtbot, engram):
    from storage.suggestions import Suggestion
    from ui.memory_model import BADGE, SUGGESTED_ROLE

    services = engram.controller.services
    store = services.store()
    fact = services.add(SemanticMemory(name="Priya", summary="Priya leads the data team")).record
    other = services.add(SemanticMemory(name="Desk", summary="Desk is on floor 2")).record
    change = Suggestion(
        memory_id=fact.id,
        memory_type=MemoryType.SEMANTIC,
        op="update",
        fields={"summary": "Priya leads the platform team"},
        agent="semantic",
    )
    drop = Suggestion(memory_id=fact.id, memory_type=MemoryType.SEMANTIC, op="delete",
                      agent="semantic")  # fmt: skip
    store.apply([], "agents:b_1", suggest=[change, drop])
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    qtbot.waitUntil(lambda: browser.model.suggested(fact.id) == 2)
    row = browser.model.row_of(fact.id)
    index = browser.model.index(row, 0)
    assert index.data(SUGGESTED_ROLE) == 2 and index.data().startswith(BADGE)
    plain = browser.model.index(browser.model.row_of(other.id), 0)
    assert not plain.data().startswith(BADGE)
    browser.select(other.id)
    assert browser.buttons["accept"].isHidden() and browser.buttons["dismiss"].isHidden()

    browser.select(fact.id)
    assert not browser.buttons["accept"].isHidden()
    assert "platform team" in browser.details.toPlainText()
    browser.buttons["accept"].click()
    qtbot.waitUntil(lambda: services.get(fact.id).summary == "Priya leads the platform team")
    assert services.get(fact.id).origin == "user"
    assert services.history_of(fact.id)[0].actor == "user"

    qtbot.waitUntil(lambda: browser.model.suggested(fact.id) == 1)
    browser.select(fact.id)
    assert [s.id for s in browser.pending] == [drop.id]
    browser.buttons["dismiss"].click()
    qtbot.waitUntil(lambda: browser.model.suggested(fact.id) == 0)
    assert services.get(fact.id).summary == "Priya leads the platform team"  # not deleted
    assert store.suggestions.known(drop) and services.suggestions(fact.id) == []


def test_score_cells_show_a_number_and_no_check_box(qtbot, engram):
    from storage.records import EpisodicMemory as Ep

    services = engram.controller.services
    services.add(SemanticMemory(name="Zebra", summary="zebra crossing near the office"))
    services.add(Ep(summary="saw a zebra at the zoo"))
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC, "zebra")
    score = browser.model.index(0, browser.model.columnCount() - 1)
    assert float(score.data()) > 0
    assert score.data(Qt.ItemDataRole.CheckStateRole) is None  # Qt draws a box for any value
    assert not browser.model.flags(score) & Qt.ItemFlag.ItemIsUserCheckable
    browser.search_everything("zebra")
    qtbot.waitUntil(lambda: browser.results.rowCount() >= 2, timeout=5_000)
    for row in range(browser.results.rowCount()):
        for column in range(browser.results.columnCount()):
            cell = browser.results.index(row, column)
            assert cell.data(Qt.ItemDataRole.CheckStateRole) is None


def test_history_shows_each_change_as_words_added_and_removed_and_who_made_it(qtbot, engram):
    services = engram.controller.services
    store = services.store()
    fact = services.add(SemanticMemory(name="Desk", summary="Desk is on floor 2")).record
    services.replace(services.get(fact.id).updated(summary="Desk is on floor 3 by the window"))
    lamp = store.add(SemanticMemory(name="Lamp", summary="Lamp by the desk"), actor="agents:b_7")
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.select(fact.id)
    browser.buttons["history"].click()
    qtbot.waitUntil(lambda: browser.dialog is not None)
    dialog = browser.dialog
    assert [dialog.table.item(r, 2).text() for r in range(2)] == ["you", "you"]
    assert dialog.table.item(0, 1).text().endswith("edited")
    html = dialog.diff.toHtml()
    assert "line-through" in html and "#1b5e20" in html  # removed and added words marked
    plain = dialog.diff.toPlainText()
    assert "Summary:" in plain and "2" in plain and "3 by the window" in plain
    assert "By you" in plain
    dialog.table.selectRow(1)  # the create: everything added
    assert "Desk is on floor 2" in dialog.diff.toPlainText()
    dialog.reject()

    browser.select(lamp.id)
    browser.buttons["history"].click()
    qtbot.waitUntil(lambda: browser.dialog is not None and browser.dialog is not dialog)
    assert browser.dialog.table.item(0, 2).text() == "the memory agents"


def test_details_say_who_wrote_a_memory_and_sources_only_when_there_are_some(qtbot, engram):
    services = engram.controller.services
    mine = services.add(SemanticMemory(name="Tea", summary="Sam prefers tea")).record
    theirs = services.store().add(
        SemanticMemory(name="Desk", summary="Desk is on floor 2", provenance=("evt_1", "evt_2")),
        actor="agents:b_3",
    )
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.select(mine.id)
    text = browser.details.toPlainText()
    assert "Written by: you" in text and "Sources" not in text
    browser.select(theirs.id)
    text = browser.details.toPlainText()
    assert "Written by: the memory agents" in text
    assert "Sources: 2 (press “Why do I know this?”)" in text
    tips = {
        r.id: browser.model.index(n, 1).data(Qt.ItemDataRole.ToolTipRole)
        for n, r in enumerate(browser.model.records())
    }
    assert tips[theirs.id].endswith("Written by the memory agents")
    assert tips[mine.id].endswith("Written by you")


def test_undo_says_what_it_will_undo_and_whose_change_it_was(qtbot, engram):
    services = engram.controller.services
    fact = services.add(SemanticMemory(name="Train", summary="The train leaves at 8:15")).record
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    undo = browser.buttons["undo"]
    assert "added semantic “Train: The train leaves at 8:15” (by you)" in undo.toolTip()
    assert undo.text().startswith("Undo: added semantic")
    services.store().add(SemanticMemory(name="Bus", summary="The bus stop"), actor="agents:b_9")
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    assert "added semantic “Bus: The bus stop”" in undo.toolTip()
    assert "(by the memory agents)" in undo.toolTip()
    undo.click()
    qtbot.waitUntil(lambda: browser.status.text().startswith("Undid added semantic “Bus:"))
    assert [r.id for r in browser.model.records()] == [fact.id]
    assert "“Train: The train leaves at 8:15”" in undo.toolTip()


def test_each_suggestion_has_its_own_accept_and_dismiss(qtbot, engram):
    from PySide6.QtCore import QUrl

    from storage.suggestions import Suggestion

    services = engram.controller.services
    fact = services.add(SemanticMemory(name="Priya", summary="Priya leads the data team")).record
    first = Suggestion(memory_id=fact.id, memory_type=MemoryType.SEMANTIC, op="delete",
                       agent="semantic")  # fmt: skip
    second = Suggestion(
        memory_id=fact.id,
        memory_type=MemoryType.SEMANTIC,
        op="update",
        fields={"summary": "Priya leads the platform team"},
        agent="semantic",
    )
    services.store().apply([], "agents:b_1", suggest=[first, second])
    browser = engram.window.memories
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    browser.select(fact.id)
    html = browser.details.toHtml()
    assert f"accept:{second.id}" in html and f"dismiss:{first.id}" in html
    assert "line-through" in html  # "data" removed, "platform" added
    browser.details.anchorClicked.emit(QUrl(f"accept:{second.id}"))  # the second, not the first
    qtbot.waitUntil(lambda: services.get(fact.id).summary == "Priya leads the platform team")
    assert [s.id for s in services.suggestions(fact.id)] == [first.id]


def test_an_empty_type_explains_what_it_holds(qtbot, engram):
    from storage.kinds import kind_spec

    browser = engram.window.memories
    for memory_type in MemoryType:
        _loaded(qtbot, browser, memory_type)
        description = kind_spec(memory_type).description
        assert description and description in browser.empty.text()
        assert not browser.empty.isHidden()
    engram.controller.services.add(SemanticMemory(name="Tea", summary="Sam prefers tea"))
    _loaded(qtbot, browser, MemoryType.SEMANTIC)
    assert browser.empty.isHidden()
    _loaded(qtbot, browser, MemoryType.PROCEDURAL, "zeppelin")
    assert browser.empty.text() == "No procedural memory matches “zeppelin”."
