package boot

import "path/filepath"

// layoutUnder re-roots the default layout under root, for tests of the helpers.
func layoutUnder(root string) layout {
	l := defaultLayout()
	for _, p := range []*string{&l.Run, &l.VarRun, &l.S6, &l.Basedir, &l.Scandir, &l.ContEnv,
		&l.LegacyServices, &l.Results, &l.ContInit, &l.ServicesD, &l.ContFinish, &l.Command, &l.Svscan,
		&l.S6rcSource, &l.S6rcLive} {
		*p = filepath.Join(root, *p)
	}
	tools := make([]toolSource, len(l.Tools))
	for i, t := range l.Tools {
		tools[i] = toolSource{Dir: filepath.Join(root, t.Dir), Prefix: t.Prefix}
	}
	l.Tools = tools
	return l
}
