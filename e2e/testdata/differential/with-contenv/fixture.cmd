i=0; until grep -q "svc contenv" /trace/log 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; exec /command/with-contenv sh -c 'trace "cmd FOO=$FOO"; exit 0'
