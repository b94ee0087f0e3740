i=0; until grep -q "oneshot init-late" /trace/log 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i+1)); done; trace cmd; exit 0
