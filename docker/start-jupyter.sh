#!/bin/sh
# Starts the Jupyter Notebook server of the detlab images on $JUPYTER_PORT
# (default 8888), on all interfaces, protected by $JUPYTER_TOKEN; when the
# token is empty a random one is generated and printed.
set -eu
port="${JUPYTER_PORT:-8888}"
token="${JUPYTER_TOKEN:-}"
if [ -z "$token" ]; then
	token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	echo "JUPYTER_TOKEN was empty; generated token: $token"
fi
cd "${DETLAB_NOTEBOOK_DIR:-/opt/detlab/notebooks}"
exec jupyter notebook --ip=0.0.0.0 --port="$port" --no-browser --allow-root \
	--NotebookApp.token="$token" --NotebookApp.open_browser=False
