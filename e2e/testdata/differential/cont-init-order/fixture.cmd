exec /command/with-contenv sh -c 'trace "cmd FOO=$FOO FROM_INIT=${FROM_INIT:-unset}"; exit 0'
