trace cmd; exit 0
