i=0; until grep -q "longrun svc-main" /trace/log 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; trace cmd; exit 0
