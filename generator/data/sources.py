"""Where the training photographs come from: Debian wallpaper packages and scikit-image's data.

Only photographic images are listed (abstract/vector wallpapers are left out on purpose: the
default model is meant to make natural-looking images). Each entry names a glob below the
package's extraction root. Packages checked and left out:
``gnome-backgrounds`` 43 (all abstract), ``ukui-wallpapers`` (all illustrations),
``lomiri-wallpapers`` (logo/abstract only), ``sway-backgrounds`` 1.7-6 (eight sizes of one
drawing: the sway logo on a blue gradient). Files left out of listed packages because they are
digital art, not photographs: lomiri-wallpapers-20.04 ``Infinite-Sea_by_Aury88``,
plasma-workspace-wallpapers ``MilkyWay``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PackageSource:
    """Photographic files inside one Debian package.

    Attributes:
        package: Debian binary package name (fetched with ``apt-get download``).
        files: globs relative to the extraction root, one per photograph.
    """

    package: str
    files: tuple[str, ...]


_PLASMA = "usr/share/wallpapers/{}/contents/images/*"
_LOMIRI = "usr/share/backgrounds/{}"
_MATE = "usr/share/backgrounds/mate/nature/{}.jpg"

PACKAGE_SOURCES: tuple[PackageSource, ...] = (
    PackageSource(
        package="mate-backgrounds",
        files=(
            _MATE.format("Aqua"),
            _MATE.format("Blinds"),
            _MATE.format("Dune"),
            _MATE.format("FreshFlower"),
            _MATE.format("Garden"),
            _MATE.format("GreenMeadow"),
            _MATE.format("LadyBird"),
            _MATE.format("RainDrops"),
            _MATE.format("Storm"),
            _MATE.format("TwoWings"),
            _MATE.format("Wood"),
            _MATE.format("YellowFlower"),
        ),
    ),
    PackageSource(
        package="lomiri-wallpapers-16.04",
        files=(
            _LOMIRI.format("aitzgorri_by_Aitzol_Berasategi.jpg"),
            _LOMIRI.format("analogpattern_by_Peter_Nerlich.jpg"),
            _LOMIRI.format("Bridge_by_Sander_Klootwijk.jpg"),
            _LOMIRI.format("Dragonfly_by_Bolly.jpg"),
            _LOMIRI.format("free_by_Peter_Nerlich.jpg"),
            _LOMIRI.format("friends_by_Aitzol_Berasategi.jpg"),
            _LOMIRI.format("greentock_by_Peter_Nerlich.jpg"),
            _LOMIRI.format("life_by_Aitzol_Berasategi.jpg"),
            _LOMIRI.format("picosdeeuropa_by_Aitzol_Berasategi.jpg"),
            _LOMIRI.format("Picture_0B_by_freespace.jpg"),
            _LOMIRI.format("Picture_1A_by_freespace.jpg"),
            _LOMIRI.format("seeding_by_Clements_Engelhardt.jpg"),
            _LOMIRI.format("sunset_by_Aitzol_Berasategi.jpg"),
            _LOMIRI.format("Wine_by_Jakkub_Mede.jpg"),
        ),
    ),
    PackageSource(
        package="lomiri-wallpapers-20.04",
        files=(_LOMIRI.format("Kleiber_by_Lukas_Baubkus.jpg"),),
    ),
    PackageSource(
        package="plasma-workspace-wallpapers",
        files=tuple(
            _PLASMA.format(name)
            for name in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "Kite",
                "OneStandsOut",
                "Path",
                "Volna",
                "summer_1am",
            )
        ),
    ),
)

# scikit-image files that ship inside the wheel (no network); photographs only.
# name -> (file in skimage/data, licence as the skimage.data docstrings state it).
SKIMAGE_SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut.png", "public domain (NASA)"),
    "chelsea": ("chelsea.png", "CC0 (Stefan van der Walt)"),
    "coffee": ("coffee.png", "CC0 (Rachel Michetti)"),
    "rocket": ("rocket.jpg", "public domain (NASA/Bill Ingalls)"),
    "camera": ("camera.png", "CC0 (Lav Varshney)"),
    "brick": ("brick.png", "CC0 (CC0Textures)"),
    "grass": ("grass.png", "CC0 (DeviantArt linolafett)"),
    "gravel": ("gravel.png", "CC0 (CC0Textures)"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "public domain (NASA/ESA)"),
}
