"""The kit's lab functions are packaged reproducibly: equal code gives equal bytes, so a redeploy can tell by
CodeSha256 that nothing changed."""

import zipfile
import io

from securecart_lab.labs import functions


def test_equal_code_packages_to_equal_bytes(tmp_path):
    source = tmp_path / "checkout.py"
    source.write_text("def handler(event, context):\n    return 1\n")
    first = functions.package(source)
    source.touch()
    assert functions.package(source) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == ["checkout.py"]
        assert archive.read("checkout.py") == source.read_bytes()
    source.write_text("def handler(event, context):\n    return 2\n")
    assert functions.package(source) != first
