import pytest
from tonebridge.sim import SimBoard, VirtualClock, play_on_board

RATE = 44100


class Played:
    """A SEND played by a simulated board's own main loop, with its line signal at RATE."""

    def __init__(self, board, res, lead_ms):
        self.board = board
        self.res = res
        self.events = res["events"]
        self.backend = res["backend"]
        self.t0 = res["start_us"] - lead_ms * 1000
        self.x = board.recorder.samples(RATE, start_us=self.t0, end_us=res["end_us"])
        self.rate = RATE


@pytest.fixture
def play():
    boards = []

    def _play(
        name,
        text,
        *,
        tone_ms=100,
        gap_ms=100,
        hooks=(),
        patch=None,
        config=None,
        lead_ms=50,
        busy_ms=None,
    ):
        sb = SimBoard(name, VirtualClock(), config=config)
        boards.append(sb)
        if sb.hw is not None:
            sb.hw.write_hooks.extend(hooks)
        if patch is not None:
            patch(sb)
        if busy_ms is not None:
            # a main loop that sleeps this long between passes while playing, whatever the
            # backend says its next work is due (App.step's return value)
            app_cls = sb.load("tonebridge_fw.app").App
            step = app_cls.step

            def paced_step(self):
                ms = step(self)
                return busy_ms if self.player.busy() else ms

            app_cls.step = paced_step
        res = play_on_board(sb, text, "catapult", tone_ms, gap_ms, lead_ms=lead_ms)
        return Played(sb, res, lead_ms)

    yield _play
    for sb in boards:
        sb.close()
