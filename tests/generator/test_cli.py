"""The generator's subcommands, run as users run them (a subprocess of the installed CLI)."""

import json
import subprocess
import sys

import pytest

FOVEA = [sys.executable, "-m", "fovea_cli"]


def run(*args, cwd=None):
    return subprocess.run([*FOVEA, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_generate_writes_image_and_sidecar(tmp_path):
    out = tmp_path / "fov.png"
    r = run(
        "generate",
        "--model",
        "tiny",
        "--size",
        "256",
        "--gaze",
        "100,120",
        "--seed",
        "4",
        "--out",
        str(out),
        "--mask-out",
        str(tmp_path / "mask.png"),
    )
    assert r.returncode == 0, r.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["seed"] == 4 and side["tokens"] < side["tokens_full"] == 256
    assert len(side["step_seconds"]) == side["steps"]
    assert side["geometry"]["image_size_px"] == [256, 256]
    assert (tmp_path / "mask.png").stat().st_size > 0
    full = tmp_path / "full.png"
    assert (
        run(
            "generate",
            "--model",
            "tiny",
            "--size",
            "256",
            "--seed",
            "4",
            "--full",
            "--out",
            str(full),
        ).returncode
        == 0
    )
    assert json.loads(full.with_suffix(".json").read_text())["token_ratio"] == 1.0


def test_mask_draws_layout(tmp_path):
    r = run("mask", "--gaze-deg=-3,2", "--strength", "0.5", "--out", str(tmp_path / "m.png"))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "m.png").size == (1024, 1024)


@pytest.mark.parametrize(
    "args, message",
    [
        (["mask", "--gaze", "99999,10", "--out", "x.png"], "outside"),
        (["mask", "--gaze", "ten,10", "--out", "x.png"], "--gaze expects two finite numbers"),
        # float() reads "nan" and "inf": before, "gaze nan,3 (image px) is outside the display"
        (["mask", "--gaze", "nan,3", "--out", "x.png"], "--gaze expects two finite numbers"),
        (["mask", "--gaze-deg", "inf,3", "--out", "x.png"], "--gaze-deg expects two finite"),
        (
            ["mask", "--display", "2560,1440,-5,33,60", "--out", "x.png"],
            "width_cm must be a positive",
        ),
        (["mask", "--size", "1000", "--out", "x.png"], "does not divide into 16 px tokens"),
        (
            ["generate", "--model", "/no/such/model", "--out", "x.png"],
            "unknown model '/no/such/model'",
        ),
        (["mask", "--strength", "-2", "--out", "x.png"], "strength must be >= 0"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, message):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --- fovea generate --scene FILE | --scenes DIR ------------------------------------------------


@pytest.fixture
def photos(tmp_path):
    """A folder of real photographs (scikit-image's Chelsea, 451 x 300, and astronaut, 512 x 512)
    in tmp_path, a greyscale one, a truncated one and an empty folder beside it."""
    from PIL import Image
    from skimage import data as skdata

    (tmp_path / "photos").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    Image.fromarray(skdata.chelsea()).save(tmp_path / "photos" / "cat.png")
    Image.fromarray(skdata.astronaut()).save(tmp_path / "photos" / "astronaut.jpg", quality=95)
    Image.fromarray(skdata.chelsea()).save(tmp_path / "mixed" / "cat.png")
    Image.fromarray(skdata.chelsea()).convert("L").save(tmp_path / "mixed" / "grey.png")
    Image.fromarray(skdata.chelsea()).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(skdata.chelsea()).save(tmp_path / "cut.jpg")
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path


def _scene_hash(path):
    import numpy as np
    from PIL import Image

    from generator.scene import scene_hash

    return scene_hash(np.asarray(Image.open(path).convert("RGB")))


def test_generate_from_a_scene_file_and_a_scene_folder(photos):
    """A prompt model (tiny) takes the scene as image-to-image; the sidecar records it."""
    cat = photos / "photos" / "cat.png"
    common = ["generate", "--model", "tiny", "--size", "128", "--gaze", "40,60", "--seed", "3"]
    scene_args = ["--scene", str(cat), "--t-start", "0.5", "--scene-out", "a-scene.png"]
    r = run(*common, *scene_args, "--out", "a.png", cwd=photos)
    assert r.returncode == 0, r.stderr
    assert f"scene {cat.resolve()}" in r.stdout
    side = json.loads((photos / "a.json").read_text())
    assert side["scene"]["source"] == f"{cat.resolve()}#crop=75,0,300x300"  # its centre square
    assert side["scene"]["size_px"] == [32, 32]
    assert side["scene"]["sha256"] == _scene_hash(photos / "a-scene.png")
    assert side["t_start"] == 0.5 and side["tokens"] < side["tokens_full"]

    r = run(*common, "--scenes", "photos", "--out", "b.png", "--full", cwd=photos)
    assert r.returncode == 0, r.stderr
    source = json.loads((photos / "b.json").read_text())["scene"]["source"]
    assert source.startswith(str((photos / "photos").resolve())) and "#crop=" in source


def _small_scene_model(scene_factor: int):
    """The default model's architecture at a tiny size, random weights, its own scene factor."""
    import torch

    from generator.models.default import DefaultModel, ModelConfig
    from generator.models.weights_io import build_generator

    config = ModelConfig(
        heads=2,
        head_dim=32,
        double_blocks=1,
        single_blocks=1,
        rope_axes=(8, 12, 12),
        steps=2,
        scene_factor=scene_factor,
    )
    torch.manual_seed(0)
    return build_generator(DefaultModel(config).eval(), model_id="small-scene")


def test_scene_models_get_scenes_at_their_own_factor(photos, monkeypatch, capsys):
    from PIL import Image

    import generator.loading
    from fovea_cli.main import main

    monkeypatch.chdir(photos)
    small = _small_scene_model(8)
    monkeypatch.setattr(generator.loading, "load_generator", lambda *a, **k: small)
    base = ["generate", "--model", "small-scene", "--size", "128", "--seed", "1"]
    scene_args = ["--scene", "photos/cat.png", "--scene-out", "s0.png"]
    assert main([*base, *scene_args, "--out", "s.png"]) == 0
    assert Image.open("s0.png").size == (16, 16)
    side = json.loads((photos / "s.json").read_text())
    assert side["scene"]["size_px"] == [16, 16] and side["scene"]["sha256"] == _scene_hash("s0.png")
    assert main([*base, "--out", "p.png", "--scene-out", "p0.png"]) == 0  # the pool, by seed
    source = json.loads((photos / "p.json").read_text())["scene"]["source"]
    assert source.startswith("pool:") and "#crop=" in source and "p.png" in capsys.readouterr().out


BAD_SCENES = [
    (["--scene", "cut.jpg"], "scene file cut.jpg: is truncated or corrupt"),
    (["--scene", "grey.png"], "scene file grey.png: is greyscale (mode L)"),
    (
        ["--scenes", "mixed", "--size", "256"],
        "scene folder mixed: 1 of 2 images are not usable scenes: grey.png: is greyscale",
    ),
    (["--scenes", "empty"], "scene folder empty: no images in it"),
    (["--scenes", "nowhere"], "scene folder nowhere: no such folder"),
    (["--scene", "missing.png"], "scene file missing.png: no such file"),
    (["--scene", "photos"], "--scene expects an image file; photos is a folder (use --scenes)"),
    (["--scenes", "grey.png"], "--scenes expects a folder; grey.png is a file (use --scene)"),
    (
        ["--scene", "photos/cat.png", "--size", "512"],
        "scene file photos/cat.png: is 451x300 px, too small for a 512x512 px output",
    ),
    (["--scenes", "photos", "--size", "1000"], "does not divide into 16 px tokens"),
    (["--scene", "photos/cat.png", "--t-start", "0"], "t_start must be in (0, 1]"),
]


@pytest.mark.parametrize("args, message", BAD_SCENES)
def test_bad_scenes_are_refused_before_the_model_loads(photos, monkeypatch, capsys, args, message):
    import generator.loading
    from fovea_cli.main import main

    def never(*a, **k):
        raise AssertionError("the model was loaded for a bad scene")

    monkeypatch.chdir(photos)
    monkeypatch.setattr(generator.loading, "load_generator", never)
    assert main(["generate", *args, "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (photos / "x.png").exists()


def test_bad_scene_is_one_line_from_the_command(photos):
    """As users run it, with the default model: refused before any model loads."""
    for args in (["--scene", "cut.jpg"], ["--scenes", "mixed"]):
        r = run("generate", *args, "--out", "x.png", cwd=photos)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: scene ")
    r = run("generate", "--scene", "grey.png", "--scenes", "photos", "--out", "x.png", cwd=photos)
    assert r.returncode == 2 and "not allowed with argument --scene" in r.stderr


def test_scene_out_needs_a_scene_for_prompt_models(tmp_path, monkeypatch, capsys):
    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    args = ["generate", "--model", "tiny", "--size", "64", "--out", "x.png", "--scene-out", "s.png"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--scene-out: model 'tiny' generates from a prompt, without a scene" in err
    assert not (tmp_path / "x.png").exists()


def test_an_image_keeps_its_sidecar_when_another_format_shares_the_name(tmp_path, monkeypatch):
    """s.jpg after s.png would replace s.png's sidecar s.json: refused before the model loads;
    the same name again (a new s.png) replaces both, as any output does."""
    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    base = ["generate", "--model", "tiny", "--size", "64", "--seed", "1"]
    assert main([*base, "--out", "s.png"]) == 0
    sidecar = json.loads((tmp_path / "s.json").read_text())
    assert sidecar["image_file"] == "s.png"
    assert main([*base, "--out", "s.jpg"]) == 2
    assert not (tmp_path / "s.jpg").exists()
    assert json.loads((tmp_path / "s.json").read_text()) == sidecar
    assert main([*base, "--seed", "2", "--out", "s.png"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["seed"] == 2
    # a sidecar from before sidecars named their image: a same-named image beside it guards it
    (tmp_path / "s.json").write_text(json.dumps({"seed": 2}))
    assert main([*base, "--out", "s.jpg"]) == 2
    (tmp_path / "s.png").unlink()  # its image gone, the old sidecar is free to replace
    assert main([*base, "--out", "s.jpg"]) == 0


def test_a_prompt_to_a_scene_model_is_refused_not_ignored(photos, monkeypatch, capsys):
    """The default model generates from a scene and has no text input: a --prompt was dropped
    without a word, so a user believed the image followed it."""
    import generator.loading
    from fovea_cli.main import main

    monkeypatch.chdir(photos)
    small = _small_scene_model(8)
    monkeypatch.setattr(generator.loading, "load_generator", lambda *a, **k: small)
    args = ["generate", "--model", "small-scene", "--size", "128", "--out", "x.png"]
    assert main([*args, "--prompt", "a red barn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prompt: model 'small-scene' generates from a scene")
    assert len(err.strip().splitlines()) == 1 and not (photos / "x.png").exists()


def test_building_the_parser_imports_no_torch():
    """``fovea --help`` stays fast: the command modules import torch (and pandas, PsychoPy) only
    in their handlers; the training flags' sampler names come from generator.sampler_names."""
    heavy = ("torch", "pandas", "psychopy", "diffusers", "matplotlib")
    code = (
        "import sys\n"
        "from fovea_cli.main import build_parser\n"
        "build_parser()\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_sampler_names_are_the_samplers_the_pipeline_runs():
    from generator.pipeline import SAMPLERS as pipeline_samplers
    from generator.sampler_names import SAMPLERS

    assert SAMPLERS == ("euler", "renoise") and pipeline_samplers is SAMPLERS


def test_a_full_disk_leaves_no_torn_image_and_keeps_the_older_one(tmp_path, monkeypatch, capsys):
    """A disk that fills while an image is written leaves no part of it, and an image of an
    earlier run at that path as it was: before, a torn (truncated) PNG, though the message says
    "what was written whole is kept"."""
    from fovea_cli.main import main
    from tests.disk_full import disk_fills_while_writing

    monkeypatch.chdir(tmp_path)
    base = ["generate", "--model", "tiny", "--size", "64", "--out", "o.png", "--mask-out", "m.png"]
    full = "no space left on the device (free some, then run the same command again"

    def files():
        return {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with monkeypatch.context() as disk:
        disk_fills_while_writing(disk, "o.png")
        assert main([*base, "--seed", "1"]) == 2
    assert capsys.readouterr().err.startswith(f"error: o.png: {full}")
    assert files() == {}  # no image, no temporary

    assert main([*base, "--seed", "1"]) == 0
    before = files()
    assert set(before) == {"o.png", "o.json", "m.png"}
    for name in ("o.png", "m.png"):
        with monkeypatch.context() as disk:
            filled = disk_fills_while_writing(disk, name)
            assert main([*base, "--seed", "2"]) == 2
        assert filled and f"error: {name}: {full}" in capsys.readouterr().err
        assert set(files()) == {"o.png", "o.json", "m.png"}  # no temporary left
        assert files()[name] == before[name]  # the older image, whole


def test_a_full_disk_leaves_no_torn_mask(tmp_path, monkeypatch, capsys):
    from fovea_cli.main import main
    from tests.disk_full import disk_fills_while_writing

    monkeypatch.chdir(tmp_path)
    args = ["mask", "--size", "256", "--out", "m.png"]
    with monkeypatch.context() as disk:
        disk_fills_while_writing(disk, "m.png")
        assert main(args) == 2
    assert "error: m.png: no space left on the device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(args) == 0 and (tmp_path / "m.png").stat().st_size > 0


@pytest.mark.parametrize(
    "option, note",
    [
        (
            "--gaze=1280,720",  # screen coordinates of a 2560x1440 display
            "note: --gaze 1280,720 lies outside the 1024x1024 px image: --gaze is in image pixels "
            "(x right, y down, 0..1024), not screen pixels",
        ),
        (
            "--gaze-deg=20,0",
            "note: --gaze-deg 20,0 puts the gaze at image px 1446.88,512 (x right, y down, "
            "0..1024), outside the 1024x1024 px image",
        ),
        ("--gaze=-10,3", "note: --gaze -10,3 lies outside the 1024x1024 px image"),
        ("--gaze=1024,0", None),  # the image's corner: on it
        ("--gaze-deg=-3,2", None),
    ],
)
def test_a_gaze_off_the_image_is_noted_and_still_run(tmp_path, monkeypatch, capsys, option, note):
    """Screen coordinates typed into --gaze (image pixels) or degrees past the image's edge were
    taken silently, for an almost all-coarse layout: a note now says so (it may be meant)."""
    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["mask", "--size", "1024", option, "--out", "m.png"]) == 0
    err = capsys.readouterr().err
    if note is None:
        assert err == ""
    else:
        assert err.startswith(note) and len(err.strip().splitlines()) == 1
    assert (tmp_path / "m.png").is_file()


def test_the_gaze_help_gives_the_axes_and_the_form_for_negative_values(capsys):
    from fovea_cli.main import main

    for command in ("mask", "generate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert "gaze in image pixels: x right, y down, 0..image size" in help_text
        assert "--gaze=-10,3" in help_text


def test_every_output_of_generate_gets_its_folder(tmp_path, monkeypatch):
    """--out and --scene-out made their folders but --mask-out did not: a mask into a new folder
    failed after the generation, naming a temporary file."""
    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    args = ["generate", "--model", "tiny", "--size", "64", "--gaze", "10,20", "--out", "a/x.png"]
    assert main([*args, "--mask-out", "b/m.png"]) == 0
    assert (tmp_path / "a" / "x.png").is_file() and (tmp_path / "b" / "m.png").is_file()


def test_a_t_start_that_would_not_apply_is_refused_not_ignored(photos, capsys):
    """--t-start was dropped without a word for a scene model (the default model starts from
    noise) and for a prompt model given no scene: the sidecar said t_start 1.0."""
    from fovea_cli.main import main

    common = ["generate", "--size", "64", "--t-start", "0.3"]
    assert main([*common, "--model", "tiny", "--out", str(photos / "a.png")]) == 2
    assert "error: --t-start is where image-to-image starts from a scene" in capsys.readouterr().err
    scene = ["--scene", str(photos / "photos" / "cat.png")]
    assert main([*common, *scene, "--model", "default", "--out", str(photos / "b.png")]) == 2
    err = capsys.readouterr().err
    assert "error: --t-start: model 'default' adds detail to its scene" in err
    assert not (photos / "a.png").exists() and not (photos / "b.png").exists()


def test_mask_draws_over_the_picture_as_generate_reads_a_scene(tmp_path, monkeypatch):
    """fovea mask --image stretched the picture to the square image, ignored its EXIF orientation
    (a portrait photograph lay on its side) and turned a 16-bit greyscale PNG white; it now reads
    it as --scene does (upright, largest centre crop), so the layout lies on the same content."""
    import numpy as np
    from PIL import Image

    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    upright = np.zeros((64, 192, 3), np.uint8)  # red | green | blue, 64 px each
    upright[:, :64], upright[:, 64:128], upright[:, 128:] = (200, 0, 0), (0, 200, 0), (0, 0, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter; shown upright
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save("photo.png", exif=exif)
    Image.fromarray(np.full((64, 64, 3), (0, 200, 0), np.uint8)).save("green.png")
    Image.fromarray(np.full((64, 64), 128 * 257, np.uint16)).save("grey16.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save("grey8.png")
    drawn = {}
    for name in ("photo", "green", "grey16", "grey8"):
        args = ["mask", "--size", "64", "--mode", "full", "--image", f"{name}.png"]
        assert main([*args, "--out", f"m-{name}.png"]) == 0
        drawn[name] = np.asarray(Image.open(f"m-{name}.png"), dtype=int)
    assert np.abs(drawn["photo"] - drawn["green"]).max() <= 2  # the centre third, upright
    assert np.abs(drawn["grey16"] - drawn["grey8"]).max() <= 1


def test_the_mask_backdrop_and_scene_crops_share_one_crop_without_torch():
    """fovea mask --image re-derived generate's centre crop (scene_crop imported torch at module
    level); it now calls scene_crop.pick_crop, whose geometry imports no torch."""
    code = (
        "import sys; import generator.backdrop, generator.scene_crop as c; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "print(c.pick_crop(300, 400, width_px=64, height_px=64).describe())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "crop=50,0,300x300"


@pytest.mark.parametrize("option", ["--out", "--scene-out", "--mask-out"])
def test_no_output_may_overwrite_the_scene_photograph(photos, capsys, option):
    """--scene photo.png --scene-out photo.png replaced the photograph with its 16 px scene (and
    --out with the generated image): the user's file was gone. It is refused before any work."""
    from fovea_cli.main import main

    photo = photos / "photos" / "cat.png"
    before = photo.read_bytes()
    outputs = {"--out": str(photos / "o.png"), option: str(photo)}
    args = ["generate", "--model", "tiny", "--size", "64", "--scene", str(photo)]
    for name, path in outputs.items():
        args += [name, path]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {option} {photo} is the --scene photograph" in err
    assert photo.read_bytes() == before


def test_mask_refuses_to_draw_over_its_own_image_file(tmp_path, monkeypatch, capsys):
    """fovea mask --image photo.png --out photo.png replaced the picture with its mask."""
    import numpy as np
    from PIL import Image

    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save("photo.png")
    before = (tmp_path / "photo.png").read_bytes()
    assert main(["mask", "--size", "64", "--image", "photo.png", "--out", "./photo.png"]) == 2
    assert "error: --out ./photo.png is the --image picture" in capsys.readouterr().err
    assert (tmp_path / "photo.png").read_bytes() == before


def test_no_output_image_goes_into_the_scenes_folder(photos, capsys):
    """--scenes photos --out photos/gen.png put the generated image among the photographs: the
    next run could draw it as a scene, and the seeds' photographs changed with the folder's file
    count. Refused; the folder stays as it was."""
    from fovea_cli.main import main

    folder = photos / "photos"
    before = sorted(p.name for p in folder.iterdir())
    common = ["generate", "--model", "tiny", "--size", "64", "--scenes", str(folder)]
    for option in ("--out", "--mask-out", "--scene-out"):
        outputs = {"--out": str(photos / "o.png"), option: str(folder / "gen.PNG")}
        args = [*common, *(item for pair in outputs.items() for item in pair)]
        assert main(args) == 2
        assert f"error: {option} {folder / 'gen.PNG'} is in the --scenes folder" in (
            capsys.readouterr().err
        )
    assert sorted(p.name for p in folder.iterdir()) == before
    assert main([*common, "--out", str(photos / "o.png")]) == 0  # beside the folder: fine


@pytest.mark.parametrize("command", ["generate", "mask"])
def test_a_size_below_one_names_the_option(tmp_path, capsys, command):
    """--size 0 said 'image image_width_px must be a positive integer, got 0', naming a field of
    the code instead of the option; it is now argparse's usage error naming --size."""
    from fovea_cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--size", "0", "--out", str(tmp_path / "x.png")])
    assert exit_.value.code == 2
    assert "error: argument --size: 0 must be at least 1" in capsys.readouterr().err


def test_an_odd_token_count_is_noted_by_mask_and_generate(tmp_path, monkeypatch, capsys):
    """400 px is 25 tokens a side: the right and bottom edges keep full-resolution strips (a
    reviewer saw them in fovea generate's images and wondered); both commands now say so, once,
    and nothing for a full-resolution image or a size without strips."""
    from fovea_cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["mask", "--size", "400", "--out", "m.png"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: the 400x400 px image is 25x25 tokens of 16 px, an odd count")
    assert err.strip().endswith("(400 px: 384 or 512)") and len(err.strip().splitlines()) == 1
    assert main(["mask", "--size", "384", "--out", "m.png"]) == 0
    assert capsys.readouterr().err == ""
    args = ["generate", "--model", "tiny", "--size", "144", "--seed", "0"]
    assert main([*args, "--out", "g.png"]) == 0
    assert "note: the 144x144 px image is 9x9 tokens" in capsys.readouterr().err
    assert main([*args, "--full", "--out", "f.png"]) == 0
    assert "odd count" not in capsys.readouterr().err
