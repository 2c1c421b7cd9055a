"""The mutation stages (tonebridge.testing.mutation): which firmware files each session
mutates, the tests that judge its mutants, and the operators left out."""

# module -> (firmware file or list of files, test stages, timeout s). A stage is one pytest
# run; the next runs only if it passed, so a mutant the fast unit tests kill never pays for the
# simulator. A list: the files split out of one module, mutated in one session against the
# same tests (the engine: its request verbs, its sequencer, its Job and its exactly-once
# window).
_FW = "firmware/tonebridge_fw/"
MODULES = {
    "engine": (
        [
            _FW + "engine.py",
            _FW + "verbs.py",
            _FW + "sequencer.py",
            _FW + "job.py",
            _FW + "window.py",
        ],
        [
            [
                "tests/firmware/test_engine.py",
                "tests/firmware/test_flash.py",
                "tests/firmware/test_engine_verify.py",
                "tests/firmware/test_engine_progress.py",
            ],
            ["tests/protocol/test_client.py"],
        ],
        60,
    ),
    # what the board hears of its own line: verified sends and the self-test's checks
    "linecheck": (
        _FW + "linecheck.py",
        [
            ["tests/firmware/test_engine_verify.py"],
            ["tests/sim/test_selftest.py", "tests/sim/test_verified_sends.py"],
        ],
        90,
    ),
    "player": (
        _FW + "player.py",
        [
            ["tests/firmware/test_player.py", "tests/firmware/test_flash.py"],
            [
                "tests/sim/test_hook_flash.py",
                "tests/sim/test_rp2_audio.py",
                "tests/sim_mt8880/test_mt8880_audio.py",
                "tests/sim/test_power_up.py",
                "tests/sim/test_player_first.py",
                "tests/sim/test_app_loop.py::test_loop_pacing_busy_and_idle",
                "tests/sim/test_app_loop.py::test_a_request_while_an_mt8880_plays_is_answered",
            ],
        ],
        90,
    ),
    "line": (
        _FW + "line.py",
        [
            ["tests/firmware/test_line.py", "tests/firmware/test_flash.py"],
            ["tests/sim/test_line_watchdog.py", "tests/sim/test_hook_flash.py", "tests/mpunix"],
        ],
        60,
    ),
    "codec": (
        _FW + "codec.py",
        [
            ["tests/firmware/test_codec.py", "tests/firmware/test_engine.py"],
            ["tests/core/test_frame_viper.py"],  # the unix port picks the viper kernels
        ],
        60,
    ),
    # codec's viper kernels (CRC, body check, mark and newline search): the shim and the unix
    # port's native emitter run them against codec's portable loops; codec's unit tests follow
    "frame_viper": (
        _FW + "frame_viper.py",
        [["tests/core/test_frame_viper.py"], ["tests/firmware/test_codec.py"]],
        60,
    ),
    "dialstring": (
        _FW + "dialstring.py",
        [
            [
                "tests/firmware/test_dialstring.py",
                "tests/firmware/test_engine.py",
                "tests/firmware/test_flash.py",
            ]
        ],
        60,
    ),
    "app": (
        _FW + "app.py",
        [
            [
                "tests/mpunix/test_app_unix.py",
                "tests/firmware/test_engine.py::test_app_and_transport_import_without_hardware",
                "tests/firmware/test_engine.py::test_hardware_id_from_profile_is_frame_safe",
                "tests/firmware/test_engine.py::test_hardware_id_from_machine_unique_id",
            ],
            [
                "tests/sim/test_app_loop.py",
                "tests/sim/test_board_runtime.py",
                "tests/sim/test_player_first.py",
                # actions and passes the merges added: the hook flash, SELFTEST's loop relay and
                # local plays, call progress (_hear), verified sends
                "tests/sim/test_hook_flash.py",
                "tests/sim/test_selftest.py",
                "tests/sim/test_dialtone_wait.py",
                "tests/sim/test_call_progress_line.py",
                "tests/sim/test_verified_sends.py",
            ],
        ],
        240,  # the stage's baseline is ~75 s at load 5-7
    ),
    "transport": (
        _FW + "transport.py",
        [
            [
                "tests/mpunix/test_app_unix.py",
                "tests/firmware/test_engine.py::test_app_and_transport_import_without_hardware",
            ],
            ["tests/sim/test_transport.py", "tests/sim/test_board_runtime.py"],
        ],
        90,
    ),
    "pwm_dma_rp2": (
        _FW + "backends/pwm_dma_rp2.py",
        [
            ["tests/firmware/test_pwm_dma_rp2.py"],
            ["tests/sim/test_rp2_audio.py", "tests/sim/test_fault_seeding.py"],
        ],
        120,
    ),
    "i2s_dac": (
        _FW + "backends/i2s_dac.py",
        [
            ["tests/firmware/test_i2s_dac.py"],
            ["tests/sim_i2s/test_i2s_audio.py", "tests/sim_i2s/test_i2s_micropython.py"],
        ],
        120,
    ),
    "mt8880": (
        _FW + "backends/mt8880.py",
        [["tests/firmware/test_mt8880.py"], ["tests/sim_mt8880/test_mt8880_audio.py"]],
        120,
    ),
}

EXCLUDED_OPERATORS = [
    # arithmetic <-> bitwise and anything -> `**`: repeats of the arithmetic swaps that stay
    r"core/ReplaceBinaryOperator_\w+_Pow$",
    r"core/ReplaceBinaryOperator_(Add|Sub|Mul|Div|FloorDiv|Mod)_(LShift|RShift|BitOr|BitAnd|BitXor)$",
    r"core/ReplaceBinaryOperator_(LShift|RShift|BitOr|BitAnd|BitXor)_(Mul|Div|FloorDiv|Mod)$",
    # identity comparisons on ints/strings: repeat == / != (and are CPython-implementation bound)
    r"core/ReplaceComparisonOperator_\w+_(Is|IsNot)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Lt|LtE|Gt|GtE)$",
]
