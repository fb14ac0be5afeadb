"""Long phases that log nothing else say where they are: a progress line at most every few seconds."""
import logging

from sinlstm_sym.reference.gluon import train_gluon_reference
from sinlstm_sym.core.heartbeat import Heartbeat


def test_heartbeat_logs_only_when_the_interval_has_passed(caplog):
    log = logging.getLogger("test_heartbeat")
    with caplog.at_level(logging.INFO, logger="test_heartbeat"):
        quiet, chatty = Heartbeat(log, interval=3600), Heartbeat(log, interval=0)
        assert [quiet.beat("quiet %d", i) for i in range(3)] == [False] * 3
        assert [chatty.beat("step %d of %d", i, 3) for i in range(3)] == [True] * 3
    assert [r.getMessage() for r in caplog.records] == ["step 0 of 3", "step 1 of 3", "step 2 of 3"]


def test_the_gluon_reference_says_what_it_trains_before_its_first_log_point(caplog):
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.reference.gluon"):
        train_gluon_reference(num_samples=1500, log_every=5, seed=1)
    messages = [r.getMessage() for r in caplog.records if r.name == "sinlstm_sym.reference.gluon"]
    assert messages[0] == "gluon reference: 1 epoch(s) of 5 batches of 300, log every 5"
    assert messages[1].startswith("gluon reference: epoch 0 batch 5 loss ")
