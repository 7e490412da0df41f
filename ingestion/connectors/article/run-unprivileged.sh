#!/bin/sh
# Chromium as an unprivileged user: when the worker runs as root, Playwright starts this
# script in the browser's place (browser.py) and it drops the user, the group and every
# supplementary group, and forbids regaining privileges, before the browser reads a byte
# of a page. Owned by root with the code: never by the user it switches to.
exec setpriv --reuid="$TWIN_BROWSER_UID" --regid="$TWIN_BROWSER_GID" --clear-groups --no-new-privs -- \
    "$TWIN_BROWSER_BINARY" "$@"
