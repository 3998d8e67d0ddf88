"""``phototag clean``: dry run, what it removes, exit codes."""

from __future__ import annotations

from test_tags import FACES, INFO, face_image, make_jpeg
from typer.testing import CliRunner

from phototag import tags
from phototag.clean import CleanOptions, clean
from phototag.cli import app
from phototag.sidecar import sidecar_path

runner = CliRunner()


def library(root):
    """A folder with a tagged JPEG, a PNG with a sidecar (in a subfolder) and an untouched JPEG."""
    (root / "sub").mkdir()
    jpeg = make_jpeg(root / "a.jpg", "camera")
    png = root / "sub" / "b.png"
    face_image().save(png)
    untouched = make_jpeg(root / "c.jpg", "plain")
    tags.write_faces(jpeg, FACES, INFO, "m1")
    tags.write_sidecar(png, FACES, INFO, "m1")
    return jpeg, png, untouched


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_run_changes_nothing_then_clean_removes_it(tmp_path):
    jpeg, png, untouched = library(tmp_path)
    before = snapshot(tmp_path)

    dry = runner.invoke(app, ["clean", "--dry-run", str(tmp_path)])
    assert dry.exit_code == 0, dry.output
    assert "Would clean 2 file(s)." in dry.output and "EXIF record" in dry.output
    assert snapshot(tmp_path) == before

    done = runner.invoke(app, ["clean", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "Cleaned 2 file(s)." in done.output
    assert tags.read_record(jpeg) is None and tags.read_keywords(jpeg) == []
    assert not sidecar_path(png).exists()
    assert untouched.read_bytes() == before[untouched]
    assert "Cleaned 0 file(s)." in runner.invoke(app, ["clean", str(tmp_path)]).output


def test_clean_as_a_library_function_lists_what_it_removed(tmp_path):
    jpeg, png, untouched = library(tmp_path)
    dry = clean([tmp_path], CleanOptions(dry_run=True))
    assert dry.dry_run and (dry.cleaned, dry.failed) == (2, 0)
    assert [path for path, _ in dry.photos] == [str(jpeg), str(png)]
    assert dry.photos[0][1].record and dry.photos[1][1].sidecar_deleted
    done = clean([tmp_path])
    assert (done.cleaned, done.failed) == (2, 0) and tags.read_record(jpeg) is None
    assert clean([tmp_path]).photos == []


def test_missing_path_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["clean", str(tmp_path / "nope.jpg")])
    assert result.exit_code == 2


def test_a_file_that_cannot_be_cleaned_is_listed_and_the_run_goes_on(tmp_path):
    jpeg, png, _ = library(tmp_path)
    jpeg.chmod(0o444)
    result = runner.invoke(app, ["clean", str(tmp_path)])
    assert result.exit_code == 0 and "read-only" in result.output and "1 failed" in result.output
    assert not sidecar_path(png).exists()
    assert tags.read_record(jpeg) is not None


def test_help_describes_every_option():
    result = runner.invoke(app, ["clean", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for option, words in (("--dry-run", "change no file"), ("--touch", "modification time to now"),
                          ("paths", "folders to clean")):
        assert option in text and words in text


def test_clean_reaches_photos_through_a_linked_folder_and_skips_hidden_ones(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    linked = make_jpeg(real / "a.jpg", "plain")
    tags.write_faces(linked, FACES, INFO, "m1")
    library = tmp_path / "library"
    library.mkdir()
    (library / "album").symlink_to(real, target_is_directory=True)
    (library / ".hidden").mkdir()
    hidden = make_jpeg(library / ".hidden" / "b.jpg", "plain")
    tags.write_faces(hidden, FACES, INFO, "m1")

    done = runner.invoke(app, ["clean", str(library)])
    assert done.exit_code == 0 and "Cleaned 1 file(s)." in done.output, done.output
    assert tags.read_record(linked) is None and tags.read_record(hidden) is not None
    assert "Cleaned 1 file(s)." in runner.invoke(app, ["clean", "--hidden", str(library)]).output
    assert tags.read_record(hidden) is None
