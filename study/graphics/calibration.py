"""EyeLink calibration, validation and drift-correction graphics drawn in the PsychoPy window.

pylink calls back into a ``pylink.EyeLinkCustomDisplay`` while the tracker is in setup, calibration,
validation or drift-correction mode (``doTrackerSetup``, ``doDriftCorrect``). This subclass draws
the targets in the experiment's own window, so the participant never sees another window, and
turns ``psychopy.event`` key presses into EyeLink key codes so the experimenter can drive the
Host PC's setup menu from the display PC (Enter: camera image, C: calibrate, V: validate, O: exit
to recording, Esc: leave setup).

The camera image is not mirrored here (the Host PC shows it); a placeholder text says so.
``psychopy-eyelink-coregraphics`` (SR Research's own PsychoPy graphics) is GPL-3.0 licensed, which
is why the kit carries this small implementation instead.

Coordinates: pylink gives target positions in ``screen_pixel_coords`` space (window pixels,
origin top-left, y down); stimuli here are drawn in PsychoPy ``pix`` units (origin at the centre,
y up).
"""

from __future__ import annotations

import logging

import pylink
from psychopy import event, visual

from study.graphics.keys import eyelink_key
from study.session_display import ink_color

log = logging.getLogger(__name__)

_HELP_TEXT = (
    "Eye-tracker setup\n\n"
    "Enter: camera image (on the Host PC)    C: calibrate    V: validate\n"
    "A: auto-threshold    O: start recording    Esc: leave setup"
)


class PsychoPyCalibrationDisplay(pylink.EyeLinkCustomDisplay):
    """Calibration graphics for pylink in a PsychoPy window.

    Args:
        win: the experiment's ``psychopy.visual.Window`` (any units; stimuli here use ``pix``).
        target_outer_px: diameter of the target disc in pixels.
        target_inner_px: diameter of the central hole in pixels (0 for none).
        foreground: target colour (PsychoPy ``rgb`` space, -1..1); None: black, or white on a
            background darker than the session's texts allow black on
            (``study.session_display.ink_color``).
        background: screen colour during calibration; None keeps the window's colour so the
            pupil adapts to the experiment's luminance.
        beeps: play the EyeLink target/success/error beeps through ``psychopy.sound``.
    """

    def __init__(
        self,
        *,
        win,
        target_outer_px: float = 32.0,
        target_inner_px: float = 8.0,
        foreground=None,
        background=None,
        beeps: bool = False,
    ) -> None:
        super().__init__()
        self.win = win
        self.window_size_px = tuple(int(v) for v in win.size)
        self.background = tuple(win.color) if background is None else tuple(background)
        if foreground is None:
            gray = (sum(float(v) for v in self.background) / len(self.background) + 1.0) / 2.0
            foreground = (-1.0,) * 3 if ink_color(gray) == "black" else (1.0,) * 3
        self.foreground = tuple(foreground)
        self.beeps = beeps
        self._sounds: dict[int, object] | None = None
        # What is currently on screen; draw() renders exactly this.
        self.target_px: tuple[float, float] | None = None  # pylink coordinates (top-left, y down)
        self.image_mode = False
        self.image_title_text = ""
        self.alert_text = ""
        self.show_help = False
        self.is_open = False  # between setup_cal_display and exit_cal_display
        # The key help on entering setup; off for a drift check (``EyeLinkTracker.drift_check``),
        # where pylink calls setup_cal_display just before the target: the help flashed there.
        self.help_on_setup = True
        self.key_log: list[tuple[int, int]] = []  # EyeLink keys handed to pylink, for the record
        self._outer = visual.Circle(
            win,
            units="pix",
            radius=target_outer_px / 2,
            edges=64,
            fillColor=self.foreground,
            lineColor=None,
            colorSpace="rgb",
        )
        self._inner = (
            visual.Circle(
                win,
                units="pix",
                radius=target_inner_px / 2,
                edges=32,
                fillColor=self.background,
                lineColor=None,
                colorSpace="rgb",
            )
            if target_inner_px > 0
            else None
        )
        height_px = self.window_size_px[1]
        self._help = visual.TextStim(
            win,
            text=_HELP_TEXT,
            units="pix",
            height=max(14, height_px // 45),
            wrapWidth=self.window_size_px[0] * 0.9,
            pos=(0, -height_px * 0.3),
            color=self.foreground,
            colorSpace="rgb",
        )
        self._camera = visual.TextStim(
            win,
            text="",
            units="pix",
            height=max(16, height_px // 36),
            wrapWidth=self.window_size_px[0] * 0.9,
            pos=(0, 0),
            color=self.foreground,
            colorSpace="rgb",
        )
        self._alert = visual.TextStim(
            win,
            text="",
            units="pix",
            height=max(14, height_px // 45),
            wrapWidth=self.window_size_px[0] * 0.9,
            pos=(0, height_px * 0.35),
            color=(1.0, -1.0, -1.0),
            colorSpace="rgb",
        )

    # ----------------------------------------------------------------- drawing (ours)
    def pylink_to_pix(self, x: float, y: float) -> tuple[float, float]:
        """pylink screen coordinates (top-left origin, y down) -> PsychoPy ``pix`` (centre, y up)."""
        width, height = self.window_size_px
        return x - width / 2, height / 2 - y

    def draw(self) -> None:
        """Draw the current calibration screen into the back buffer (no flip)."""
        if self.image_mode:
            self._camera.text = "Camera image: see the EyeLink Host PC" + (
                f"\n\n{self.image_title_text}" if self.image_title_text else ""
            )
            self._camera.draw()
        elif self.show_help and self.target_px is None:
            self._help.draw()
        if self.target_px is not None:
            pos = self.pylink_to_pix(*self.target_px)
            self._outer.pos = pos
            self._outer.draw()
            if self._inner is not None:
                self._inner.pos = pos
                self._inner.draw()
        if self.alert_text:
            self._alert.text = self.alert_text
            self._alert.draw()

    def _show(self) -> None:
        self.draw()
        self.win.flip()

    # ----------------------------------------------------------------- pylink callbacks
    def setup_cal_display(self) -> None:
        self._saved_color = tuple(self.win.color)
        self.win.color = self.background
        self.win.mouseVisible = False
        # Keys pressed during the experiment (responses) must not drive the tracker's menu.
        event.clearEvents("keyboard")
        self.is_open = True
        self.target_px = None
        self.alert_text = ""
        self.show_help = self.help_on_setup
        self._show()

    def exit_cal_display(self) -> None:
        # The last frame of setup stays up until the session's next screen: nothing on it.
        self.is_open = False
        self.target_px = None
        self.show_help = False
        self.image_mode = False
        self.alert_text = ""
        self._show()
        self.win.color = getattr(self, "_saved_color", self.win.color)

    def record_abort_hide(self) -> None:
        pass

    def clear_cal_display(self) -> None:
        self.target_px = None
        self._show()

    def erase_cal_target(self) -> None:
        self.target_px = None
        self._show()

    def draw_cal_target(self, x, y) -> None:
        self.target_px = (float(x), float(y))
        self.show_help = False
        self.alert_text = ""  # a new target: no red text beside it to draw the eye
        self._show()

    def play_beep(self, beepid) -> None:
        if not self.beeps:
            return
        tone = self._beep_for(beepid)
        if tone is not None:
            tone.play()

    def _beep_for(self, beepid):
        if self._sounds is None:
            try:  # audio back ends are optional; a lab without sound still calibrates
                from psychopy import sound

                self._sounds = {
                    pylink.CAL_TARG_BEEP: sound.Sound(800, secs=0.08),
                    pylink.DC_TARG_BEEP: sound.Sound(800, secs=0.08),
                    pylink.CAL_GOOD_BEEP: sound.Sound(1200, secs=0.15),
                    pylink.DC_GOOD_BEEP: sound.Sound(1200, secs=0.15),
                    pylink.CAL_ERR_BEEP: sound.Sound(400, secs=0.3),
                    pylink.DC_ERR_BEEP: sound.Sound(400, secs=0.3),
                }
            except Exception as error:  # noqa: BLE001 - any audio failure means: stay silent
                log.warning("calibration beeps disabled: %s", error)
                self.beeps = False
                self._sounds = {}
        return self._sounds.get(beepid)

    def get_input_key(self):
        keys = []
        for name, modifiers in event.getKeys(modifiers=True):
            translated = eyelink_key(name, dict(modifiers))
            if translated is None:
                continue
            self.key_log.append(translated)
            keys.append(pylink.KeyInput(translated[0], translated[1]))
        return keys

    def alert_printf(self, msg) -> None:
        log.warning("EyeLink: %s", msg)
        if not self.is_open:
            # pylink also alerts outside setup (a failed start_recording, a file transfer):
            # a flip then would replace the session's screen mid-trial. The log has it.
            return
        self.alert_text = str(msg)
        self._show()

    def setup_image_display(self, width, height) -> int:
        self.image_mode = True
        self.show_help = False
        self._show()
        return 1

    def image_title(self, text) -> None:
        self.image_title_text = str(text)
        self._show()

    def draw_image_line(self, width, line, totlines, buff) -> None:
        # The camera image stays on the Host PC; see the module docstring.
        pass

    def set_image_palette(self, red, green, blue) -> None:
        pass

    def exit_image_display(self) -> None:
        self.image_mode = False
        self.image_title_text = ""
        self.show_help = True
        self._show()

    def draw_line(self, x1, y1, x2, y2, colorindex) -> None:
        pass  # cross-hairs belong to the camera image, which is not mirrored

    def draw_lozenge(self, x, y, width, height, colorindex) -> None:
        pass

    def get_mouse_state(self):
        return (0, 0), 0
