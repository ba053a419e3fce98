"""The /metrics page: request, error, commit and push counters in the Prometheus text format."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import kpi_forms
from .storage import STORAGE_CAUSES

if TYPE_CHECKING:
    from .server import QueueServer


REPLY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # seconds
#: Where the time of a request that goes through the writer is spent, in order (session.py and
#: writer.py stamp its Job): waiting for the writer (behind the batch being written), its batch
#: applied in memory, the batch committed (in a worker thread, the loop's other work going on
#: meanwhile), its reply made (the batch's feeds and history noted first), and the reply handed
#: to the socket (behind the connection's earlier replies and the loop's other callbacks; a
#: `current` read's card prefill too). Their sum is the request's madoguchi_reply_seconds.
STAGES = ("queued", "applied", "committed", "answered", "sent")
STAGE_BUCKETS = (0.0001, 0.0002, 0.0005, *REPLY_BUCKETS)  # a stage is often well under a millisecond


class Histogram:
    """A Prometheus histogram: counts of observations at or below each bucket's bound."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        """The histogram's lines; ``labels`` (e.g. ``stage="queued"``) go on every line."""
        out, running = [], 0
        pre = f"{labels}," if labels else ""
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{{pre}le="{"+Inf" if bound == float("inf") else f"{bound:g}"}"}} {running}')
        tail = f"{{{labels}}}" if labels else ""
        return [*out, f"{name}_sum{tail} {self.total:.6f}", f"{name}_count{tail} {running}"]


class Metrics:
    """Counters the server bumps as it works; ``text`` renders them with live gauges."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.busy: dict[str, int] = {}  # requests shed (answered busy), by type (core/admission.py)
        self.batches = 0
        self.batched_jobs = 0
        self.commit_seconds = 0.0
        self.slow_inline_commits = 0  # commits on the loop slower than writer.INLINE_SLOW (then in a thread a while)
        self.pushes = 0
        self.last_broadcast = (0, 0.0)  # (subscribers, seconds) of the latest fan-out
        self.flushes = 0  # flusher rounds that had changes to push (pushes.flusher)
        self.flush_seconds = 0.0  # their server time: waits, queue deltas, public statuses
        self.slow_dropped = 0  # clients closed because their write buffer passed the bound
        self.wal_checkpoints = 0  # SQLite WAL checkpoints off the commit path (wal.py)
        self.wal_checkpoint_failures = 0
        self.wal_restarts = 0  # times the log outgrew wal.RESTART_FRAMES and the writer restarted it
        self.wal_frames = 0  # frames in the WAL at the last checkpoint
        # the server's own part of each request: frame read -> reply handed to the socket (a load
        # generator's figures also hold its own delays; this one does not)
        self.reply_seconds = Histogram(REPLY_BUCKETS)
        self.stage_seconds = {stage: Histogram(STAGE_BUCKETS) for stage in STAGES}  # writer requests only

    def text(self, server: QueueServer) -> str:
        lines = [
            "# HELP madoguchi_requests_total Requests handled, by type.",
            "# TYPE madoguchi_requests_total counter",
        ]
        lines += [f'madoguchi_requests_total{{type="{k}"}} {v}' for k, v in sorted(self.requests.items())]
        lines += ["# HELP madoguchi_errors_total Error replies, by code.", "# TYPE madoguchi_errors_total counter"]
        lines += [f'madoguchi_errors_total{{code="{k}"}} {v}' for k, v in sorted(self.errors.items())]
        lines += ["# HELP madoguchi_reply_seconds Server time from a request's frame to its reply handed to the socket.",
                  "# TYPE madoguchi_reply_seconds histogram", *self.reply_seconds.lines("madoguchi_reply_seconds")]
        lines += ["# HELP madoguchi_request_stage_seconds Server time of each stage of a request through the writer "
                  "(queued, applied, committed, answered, sent: docs/operations.md).",
                  "# TYPE madoguchi_request_stage_seconds histogram"]
        for stage, h in self.stage_seconds.items():
            lines += h.lines("madoguchi_request_stage_seconds", f'stage="{stage}"')
        lines += ["# HELP madoguchi_busy_total Requests answered busy (shed: the writer was behind), by type.",
                  "# TYPE madoguchi_busy_total counter"]
        lines += [f'madoguchi_busy_total{{type="{k}"}} {v}' for k, v in sorted(self.busy.items())]
        lines += ["# HELP madoguchi_storage_errors_total Failed commits, by cause.",
                  "# TYPE madoguchi_storage_errors_total counter"]
        errors = server.writer.storage.errors
        lines += [f'madoguchi_storage_errors_total{{cause="{k}"}} {errors.get(k, 0)}' for k in STORAGE_CAUSES]
        behind = server.writer.behind()
        lines += [
            "# HELP madoguchi_storage_ok 1 while writes succeed, 0 while tickets cannot be saved.",
            "# TYPE madoguchi_storage_ok gauge",
            f"madoguchi_storage_ok {int(server.writer.storage.ok)}",
            "# HELP madoguchi_writer_queue Requests waiting for the writer.",
            "# TYPE madoguchi_writer_queue gauge",
            f"madoguchi_writer_queue {behind['queued']}",
            "# HELP madoguchi_writer_oldest_seconds Age of the oldest request waiting for the writer.",
            "# TYPE madoguchi_writer_oldest_seconds gauge",
            f"madoguchi_writer_oldest_seconds {behind['oldest_seconds']}",
            "# HELP madoguchi_loop_lag_seconds How late the event loop runs now (load shedding counts it).",
            "# TYPE madoguchi_loop_lag_seconds gauge",
            f"madoguchi_loop_lag_seconds {server.loop_lag:.3f}",
        ]
        lines += [
            "# TYPE madoguchi_commits_total counter",
            f"madoguchi_commits_total {self.batches}",
            "# TYPE madoguchi_committed_requests_total counter",
            f"madoguchi_committed_requests_total {self.batched_jobs}",
            "# TYPE madoguchi_commit_seconds_total counter",
            f"madoguchi_commit_seconds_total {self.commit_seconds:.6f}",
            "# TYPE madoguchi_pushes_total counter",
            f"madoguchi_pushes_total {self.pushes}",
            "# HELP madoguchi_flush_seconds_total Server time spent building and sending derived-view pushes.",
            "# TYPE madoguchi_flush_seconds_total counter",
            f"madoguchi_flush_seconds_total {self.flush_seconds:.6f}",
            "# TYPE madoguchi_flushes_total counter",
            f"madoguchi_flushes_total {self.flushes}",
            "# HELP madoguchi_slow_clients_dropped_total Clients closed because they did not read their pushes.",
            "# TYPE madoguchi_slow_clients_dropped_total counter",
            f"madoguchi_slow_clients_dropped_total {self.slow_dropped}",
            "# HELP madoguchi_slow_inline_commits_total Commits on the event loop that took too long (the next go to a thread).",
            "# TYPE madoguchi_slow_inline_commits_total counter",
            f"madoguchi_slow_inline_commits_total {self.slow_inline_commits}",
            "# HELP madoguchi_wal_checkpoints_total SQLite WAL checkpoints run beside the writer (never in a commit).",
            "# TYPE madoguchi_wal_checkpoints_total counter",
            f"madoguchi_wal_checkpoints_total {self.wal_checkpoints}",
            "# TYPE madoguchi_wal_checkpoint_failures_total counter",
            f"madoguchi_wal_checkpoint_failures_total {self.wal_checkpoint_failures}",
            "# HELP madoguchi_wal_restarts_total Times the WAL outgrew the checkpoints and the writer restarted it.",
            "# TYPE madoguchi_wal_restarts_total counter",
            f"madoguchi_wal_restarts_total {self.wal_restarts}",
            "# HELP madoguchi_wal_frames Frames in the SQLite WAL at the last checkpoint (grows while checkpoints fail).",
            "# TYPE madoguchi_wal_frames gauge",
            f"madoguchi_wal_frames {self.wal_frames}",
            "# HELP madoguchi_last_broadcast_seconds Server time to hand the latest push to all its subscribers.",
            "# TYPE madoguchi_last_broadcast_seconds gauge",
            f'madoguchi_last_broadcast_seconds{{subscribers="{self.last_broadcast[0]}"}} {self.last_broadcast[1]:.6f}',
            "# HELP madoguchi_connections Open websocket connections, by role.",
            "# TYPE madoguchi_connections gauge",
        ]
        roles: dict[str, int] = {}
        for c in server.clients:
            roles[c.role or "none"] = roles.get(c.role or "none", 0) + 1
        lines += [f'madoguchi_connections{{role="{r}"}} {n}' for r, n in sorted(roles.items())]
        lines += kpi_forms.metrics_lines(server.forms_desk)  # 書かない窓口 counts (docs/forms.md)
        lines += ["# HELP madoguchi_waiting Tickets waiting, by site.", "# TYPE madoguchi_waiting gauge"]
        for key, hub in server.hubs.items():
            waiting = sum(1 for t in hub.lobby.open_tickets() if t.active_step is None)
            lines.append(f'madoguchi_waiting{{site="{key}"}} {waiting}')
        return "\n".join(lines) + "\n"
