"""Where the training photographs come from: Debian wallpaper packages and scikit-image's data.

Only photographic images are listed (abstract/vector wallpapers are left out on purpose: the
default model is meant to make natural-looking images). Each entry names a glob below the
package's extraction root and the class the image belongs to. Packages checked and left out:
``gnome-backgrounds`` 43 (all abstract), ``ukui-wallpapers`` (all illustrations),
``lomiri-wallpapers`` (logo/abstract only).
"""

from __future__ import annotations

from dataclasses import dataclass

# The classes of the default model (index = condition id). Coarse scene types, assigned by hand.
CLASSES: tuple[str, ...] = ("landscape", "closeup")


@dataclass(frozen=True)
class PackageSource:
    """Photographic files inside one Debian package.

    Attributes:
        package: Debian binary package name (fetched with ``apt-get download``).
        files: mapping of glob (relative to the extraction root) -> class name from ``CLASSES``.
    """

    package: str
    files: dict[str, str]


_PLASMA = "usr/share/wallpapers/{}/contents/images/*"
_LOMIRI = "usr/share/backgrounds/{}"
_MATE = "usr/share/backgrounds/mate/nature/{}.jpg"

PACKAGE_SOURCES: tuple[PackageSource, ...] = (
    PackageSource(
        package="mate-backgrounds",
        files={
            _MATE.format("Aqua"): "closeup",
            _MATE.format("Blinds"): "closeup",
            _MATE.format("Dune"): "landscape",
            _MATE.format("FreshFlower"): "closeup",
            _MATE.format("Garden"): "closeup",
            _MATE.format("GreenMeadow"): "landscape",
            _MATE.format("LadyBird"): "closeup",
            _MATE.format("RainDrops"): "closeup",
            _MATE.format("Storm"): "landscape",
            _MATE.format("TwoWings"): "closeup",
            _MATE.format("Wood"): "closeup",
            _MATE.format("YellowFlower"): "closeup",
        },
    ),
    PackageSource(
        package="lomiri-wallpapers-16.04",
        files={
            _LOMIRI.format("aitzgorri_by_Aitzol_Berasategi.jpg"): "landscape",
            _LOMIRI.format("analogpattern_by_Peter_Nerlich.jpg"): "closeup",
            _LOMIRI.format("Bridge_by_Sander_Klootwijk.jpg"): "landscape",
            _LOMIRI.format("Dragonfly_by_Bolly.jpg"): "closeup",
            _LOMIRI.format("free_by_Peter_Nerlich.jpg"): "closeup",
            _LOMIRI.format("friends_by_Aitzol_Berasategi.jpg"): "closeup",
            _LOMIRI.format("greentock_by_Peter_Nerlich.jpg"): "closeup",
            _LOMIRI.format("life_by_Aitzol_Berasategi.jpg"): "landscape",
            _LOMIRI.format("picosdeeuropa_by_Aitzol_Berasategi.jpg"): "landscape",
            _LOMIRI.format("Picture_0B_by_freespace.jpg"): "closeup",
            _LOMIRI.format("Picture_1A_by_freespace.jpg"): "closeup",
            _LOMIRI.format("seeding_by_Clements_Engelhardt.jpg"): "closeup",
            _LOMIRI.format("sunset_by_Aitzol_Berasategi.jpg"): "landscape",
            _LOMIRI.format("Wine_by_Jakkub_Mede.jpg"): "closeup",
        },
    ),
    PackageSource(
        package="lomiri-wallpapers-20.04",
        files={
            _LOMIRI.format("Kleiber_by_Lukas_Baubkus.jpg"): "closeup",
            _LOMIRI.format("Infinite-Sea_by_Aury88.jpg"): "landscape",
        },
    ),
    PackageSource(
        package="plasma-workspace-wallpapers",
        files={
            _PLASMA.format(name): cls
            for name, cls in (
                ("BytheWater", "landscape"),
                ("ColdRipple", "landscape"),
                ("ColorfulCups", "closeup"),
                ("DarkestHour", "landscape"),
                ("EveningGlow", "landscape"),
                ("FallenLeaf", "closeup"),
                ("Grey", "closeup"),
                ("Kite", "landscape"),
                ("MilkyWay", "landscape"),
                ("OneStandsOut", "closeup"),
                ("Path", "landscape"),
                ("Volna", "landscape"),
                ("summer_1am", "landscape"),
            )
        },
    ),
)

# scikit-image files that ship inside the wheel (no network); photographs only.
# name -> (file in skimage/data, class, licence as the skimage.data docstrings state it).
SKIMAGE_SOURCES: dict[str, tuple[str, str, str]] = {
    "astronaut": ("astronaut.png", "closeup", "public domain (NASA)"),
    "chelsea": ("chelsea.png", "closeup", "CC0 (Stefan van der Walt)"),
    "coffee": ("coffee.png", "closeup", "CC0 (Rachel Michetti)"),
    "rocket": ("rocket.jpg", "landscape", "public domain (NASA/Bill Ingalls)"),
    "camera": ("camera.png", "closeup", "CC0 (Lav Varshney)"),
    "brick": ("brick.png", "closeup", "CC0 (CC0Textures)"),
    "grass": ("grass.png", "closeup", "CC0 (DeviantArt linolafett)"),
    "gravel": ("gravel.png", "closeup", "CC0 (CC0Textures)"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "landscape", "public domain (NASA/ESA)"),
}
