"""PsychoPy key names -> EyeLink key codes, for the calibration display's ``get_input_key``."""

from __future__ import annotations

import string

# EyeLink key codes (pylink.constants): kept here so this mapping imports without pylink.
F_KEYS = {f"f{i}": (0x3A + i) << 8 for i in range(1, 11)}  # F1_KEY = 0x3B00 ... F10_KEY = 0x4400
PAGE_UP, PAGE_DOWN = 0x4900, 0x5100
CURS_UP, CURS_DOWN, CURS_LEFT, CURS_RIGHT = 0x4800, 0x5000, 0x4B00, 0x4D00
ESC_KEY, ENTER_KEY = 0x1B, 0x0D

# Modifier bits as the EyeLink core expects them (SDL-style: shift = 1, ctrl = 64, alt = 256).
MOD_SHIFT, MOD_CTRL, MOD_ALT = 1, 64, 256

_NAMED = {
    **F_KEYS,
    "pageup": PAGE_UP,
    "pagedown": PAGE_DOWN,
    "up": CURS_UP,
    "down": CURS_DOWN,
    "left": CURS_LEFT,
    "right": CURS_RIGHT,
    "escape": ESC_KEY,
    "return": ENTER_KEY,
    "enter": ENTER_KEY,
    "num_enter": ENTER_KEY,
    "space": ord(" "),
    "tab": ord("\t"),
    "backspace": ord("\b"),
    # '+'/'-' adjust the pupil/CR thresholds on the Host PC.
    "equal": ord("+"),
    "plus": ord("+"),
    "num_add": ord("+"),
    "minus": ord("-"),
    "num_subtract": ord("-"),
}
_MODIFIER_NAMES = {"lshift", "rshift", "lctrl", "rctrl", "lalt", "ralt", "lcommand", "rcommand"}


def eyelink_key(name: str, modifiers: dict | None = None) -> tuple[int, int] | None:
    """Translate one PsychoPy key press into an EyeLink ``(key, modifier)`` pair.

    Args:
        name: a ``psychopy.event`` key name (``"c"``, ``"return"``, ``"f1"``, ``"escape"``...).
        modifiers: ``psychopy.event.getKeys(modifiers=True)``'s dict (``shift``, ``ctrl``,
            ``alt``... -> bool), or None.

    Returns:
        ``(key_code, modifier_bits)``, or None for keys the EyeLink has no use for (lone
        modifiers, media keys...).
    """
    if name in _MODIFIER_NAMES:
        return None
    modifiers = modifiers or {}
    mod = 0
    if modifiers.get("shift"):
        mod |= MOD_SHIFT
    if modifiers.get("ctrl"):
        mod |= MOD_CTRL
    if modifiers.get("alt"):
        mod |= MOD_ALT
    if name in _NAMED:
        return _NAMED[name], mod
    if len(name) == 1 and name in string.ascii_letters + string.digits:
        char = name.upper() if mod & MOD_SHIFT else name
        return ord(char), mod
    if name.startswith("num_") and name[4:].isdigit():
        return ord(name[4:]), mod
    return None
