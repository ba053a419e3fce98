"""The planner's walkthrough in docs/simulation.md runs end to end, and the numbers the doc quotes
are the ones it prints (the simulation is deterministic for a seed, whatever the process count)."""

from __future__ import annotations

from simulation import walkthrough


def test_the_documented_walkthrough_is_what_the_model_prints():
    block = walkthrough.run(jobs=1)
    # it does what it says: June's level, March and April today, a paired what-if, the advisor's plan
    assert "python run.py simulate normal_week" in block and "citizens lost" in block
    assert "compare march_peak_week --counters 市民課=+2" in block and "B − A" in block
    assert block.count("shift plan") == 2 and "open / desks" in block
    assert "√-staffing" in block and "Erlang A" in block
    documented = walkthrough.doc_block(walkthrough.DOC.read_text(encoding="utf-8"))
    assert documented, "docs/simulation.md lost its walkthrough block"
    assert documented == block, (
        "docs/simulation.md quotes other numbers than the walkthrough prints now (the model, a scenario or "
        "the catalogue changed): regenerate with `python -m simulation.walkthrough --update` and re-read the prose"
    )
