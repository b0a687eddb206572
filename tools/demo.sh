#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The README's first command: the gateway's main job on the built-in demo.
# The daemon it drives lands with the daemon issue; until then this says so
# and fails, rather than pretend.
echo "svcgw demo: not yet available: the daemon (app/svcgw) is the next piece of work." >&2
echo "What runs today: the libraries and their tests, sudo tools/test.sh" >&2
exit 1
