"""Export tests: one torch thread (a shared, busy machine)."""
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Keep the export tests light on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
