"""Output paths are refused before any work, each error naming its argument."""
import pytest

from minilayerlr.errors import UserError
from minilayerlr.paths import check_output_dir, check_output_file


def test_output_file_accepts_a_writable_place(tmp_path):
    assert check_output_file("--json", tmp_path / "out.json") == tmp_path / "out.json"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


@pytest.mark.parametrize("make, expected", [
    (lambda t: t, "is a folder"),
    (lambda t: t / "missing" / "out.json", "does not exist"),
    (lambda t: (t / "afile").write_text("x") and t / "afile" / "out.json", "is not a folder"),
])
def test_output_file_refuses(tmp_path, make, expected):
    with pytest.raises(UserError, match=rf"^--json: .*{expected}"):
        check_output_file("--json", make(tmp_path))


def test_output_dir_is_created_and_refused_under_a_file(tmp_path):
    assert check_output_dir("--out", tmp_path / "a" / "b").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match=r"^--out: .*not a folder"):
        check_output_dir("--out", tmp_path / "afile")
    with pytest.raises(UserError, match=r"^--out: cannot create"):
        check_output_dir("--out", tmp_path / "afile" / "sub")


def test_unwritable_folder_is_found_by_the_probe(tmp_path, monkeypatch):
    # Permission bits do not stop root, so simulate the failing write itself.
    import minilayerlr.paths as paths

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(paths.tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match=r"^--out: cannot write in .*Permission denied"):
        check_output_dir("--out", tmp_path)
