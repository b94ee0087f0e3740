trace "cmd exiting 7"; exit 7
