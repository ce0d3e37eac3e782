#!/bin/sh
# Build DMED Edge into a virtual environment: the one build of the Docker image and of a
# device install (deploy/install.sh). Translations are compiled where the package is
# installed (site-packages), never in the source tree.
#
#   deploy/build.sh VENV [SOURCE]     SOURCE: the source tree (default) or a built wheel
#
# Environment: PYTHON (default python3.11) makes the venv; DMED_PIP_ARGS is added to
# `pip install` (e.g. "--no-deps --no-index" offline); PYBABEL compiles the catalogues
# (default: the venv's own pybabel).
set -eu
# An install sees only what it installs, never a developer's checkout.
unset PYTHONPATH

if [ "$#" -lt 1 ]; then
  echo "usage: $0 VENV [SOURCE]" >&2
  exit 2
fi
venv=$1
source_dir=${2:-$(cd "$(dirname "$0")/.." && pwd)}
python=${PYTHON:-python3.11}
pip_args=${DMED_PIP_ARGS:-}

"$python" -m venv "$venv"
# shellcheck disable=SC2086  # pip_args is a list of options on purpose
"$venv/bin/pip" install --quiet --disable-pip-version-check $pip_args "$source_dir"

pybabel=${PYBABEL:-$venv/bin/pybabel}
for package in edge_node kiosk_ui; do
  # find_spec locates the installed package without importing it; -I keeps the current
  # directory (perhaps a checkout) off the path.
  location=$("$venv/bin/python" -I -c "import importlib.util as u, sys; \
s = u.find_spec(sys.argv[1]); print(s.submodule_search_locations[0])" "$package")
  if [ -d "$location/translations" ]; then
    "$pybabel" -q compile -f -d "$location/translations"
  fi
done
echo "built DMED Edge into $venv"
