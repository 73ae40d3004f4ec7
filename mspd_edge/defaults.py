"""The paper's settings (MCGS.md), in one place. Every backend and the CLI read them from here."""
N_SAMPLES = 20          # noisy copies per SmoothStep
LR = 1.0                # epoch learning rate
EPOCHS = "FB"           # one forward, one backward epoch
EPOCH_LETTERS = "FB"    # F: forward epoch, B: backward epoch
FORWARD = -1.0          # SmoothStep direction: descend the loss
BACKWARD = 1.0          # SmoothStep direction: ascend the loss (then reversed by the cascade)
EPS_BY_INPUT_SIZE = {32: 8 / 255, 224: 4 / 255}   # L-inf budget by model input side
# Filter resizing an image to the model input, by model input side (other sides: "area"):
# RobustBench evaluates the paper's ImageNet backbone with bicubic resizing (imaging.py).
RESIZE_BY_INPUT_SIZE = {32: "area", 224: "bicubic"}
LABEL_MODES = ("classifier", "couple", "gt")
BACKBONE = "cifar10-backbone"   # embedded default backbone; its manifest names the paired classifier
MAX_PIXELS = 50_000_000         # largest image the file tools decode (Pillow's own bomb limit: ~89 M)
READ_CACHE_BYTES = 512 * 2**20  # decoded pixels kept from the read check for the cascade; more are re-read
