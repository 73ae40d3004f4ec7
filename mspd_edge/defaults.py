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
BATCH_BYTES = 256 * 2**20       # decoded pixels the file tools hold for one cascade batch (a larger image goes alone)
# The paper's ImageNet pair (224x224): what protects photos (`mspd-edge models pull` fetches them).
PHOTO_BACKBONE = "Singh2023Revisiting_ViT-S-ConvStem"
PHOTO_CLASSIFIER = "Tian2022Deeper_DeiT-B"
PHOTO_SCALE = 4   # an image this many times the model's side (both ways) is a photo to a 32x32 model
# Randomized smoothing (Cohen et al. 2019): n0 selection votes, n estimation votes, confidence
# 1 - alpha. n = 1,000 suits a CPU (largest radius 2.46 sigma); a GPU affords 10,000-100,000.
CERTIFY_N0 = 100
CERTIFY_N = 1000
CERTIFY_ALPHA = 0.001
CERTIFY_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)
# Sparse (L0) attacks: k pixels (all channels of a pixel) on a 32x32 image, scaled with the area.
SPARSE_K = 20
SPARSE_K_SIDE = 32
SPARSE_STEPS = 300      # iterations of each sparse-PGD variant and Sparse-RS queries (sAA: 10,000; a GPU budget)
SPARSE_RESTARTS = 1
