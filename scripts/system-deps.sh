#!/usr/bin/env bash
# System packages the test suite uses: Debian's Chromium for the report's browser test, and pdflatex
# (texlive-latex-base without recommends: ~40 MB download) to compile the LaTeX of `bfrbench table`.
# Installs them when run as root on Debian/Ubuntu; otherwise says so (those tests then skip).
set -u
have() { command -v "$1" >/dev/null 2>&1; }
updated=0
install() {  # install PACKAGE [apt options]: quietly, a failure only warns; the package lists are read once
  local pkg=$1; shift
  if [ $updated = 0 ]; then apt-get update -qq || true; updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$pkg" >/dev/null \
    || echo "warning: could not install $pkg; the tests that need it will be skipped"
}
root=0
if [ "$(id -u)" = "0" ] && have apt-get; then root=1; fi
if ! have chromium && ! have chromium-browser; then
  if [ $root = 1 ]; then
    echo "installing chromium for the report's browser test..."
    install chromium
  else
    echo "note: chromium not found and not root: the report's browser test will be skipped (apt-get install chromium)"
  fi
fi
if ! have pdflatex; then
  if [ $root = 1 ]; then
    echo "installing texlive-latex-base for the LaTeX compile test of bfrbench table..."
    install texlive-latex-base --no-install-recommends
  else
    echo "note: pdflatex not found and not root: the LaTeX compile test will be skipped (apt-get install texlive-latex-base)"
  fi
fi
exit 0
