trace "cmd FOO=${FOO:-unset}"; exit 0
