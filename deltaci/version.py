"""The control plane's release. /healthz reports it, the image is tagged and labelled
with it (deploy/build-images.sh), and `docker run <image> version` prints it."""

VERSION = "0.1.0"
