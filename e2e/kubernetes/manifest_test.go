// Package kubernetes checks the Kubernetes recipe in deploy/kubernetes without a cluster: every
// manifest is decoded strictly into the k8s.io/api types (an unknown or misspelled field, a
// duplicate key, a wrong type or an unknown kind fails), and the settings the recipe promises are
// asserted — non-root uid 10000, a read-only root with emptyDirs at /run and /tmp, one volume
// claim per replica at /opt/data, probes that judge the container and never one gateway
// (liveness `gateway status --live`, readiness and startup `--ready`; never `--check`), the
// HTTP endpoint on and its port exposed by the Service, a grace period that covers the stop
// budget, a headless Service that governs the StatefulSet, and a kustomization that lists
// exactly the manifests of the directory. rules_test.go checks deploy/prometheus.
//
// It is its own package, so it runs without the Docker engine that the e2e package's TestMain
// looks for.
package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	strictjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// dir is the recipe, relative to this package.
const dir = "../../deploy/kubernetes"

// What the image and the recipe promise.
const (
	image       = "s6gate:latest"
	serviceUID  = 10000 // the image's `gateway` user and group
	dataRoot    = "/opt/data"
	gatewayBin  = "/usr/local/bin/gateway"
	graceMargin = 2 * time.Second // kubelet's SIGKILL must come this long after /init's own
	metricsPort = "metrics"       // the name of gw-http's port, in the pod and the Service
)

// kustomizationNames are the file names kustomize looks for.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomization is the part of kustomize's Kustomization the recipe may use. It is decoded
// strictly too, so a field outside this list (or a misspelled one) fails the test: add it here
// when the recipe needs it.
type kustomization struct {
	APIVersion   string            `json:"apiVersion"`
	Kind         string            `json:"kind"`
	Namespace    string            `json:"namespace,omitempty"`
	Resources    []string          `json:"resources"`
	CommonLabels map[string]string `json:"commonLabels,omitempty"`
	Labels       []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	// What `kustomize edit set image s6gate=s6gate:v2` writes.
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// recipe is the decoded directory.
type recipe struct {
	manifests    []string // file names of the manifests, without the kustomization
	kust         kustomization
	objects      int
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
}

// decoder decodes YAML into the registered k8s.io/api types, strictly: apimachinery's
// serializer in strict mode reports unknown fields, fields whose case differs from the schema
// (encoding/json would accept `runAsNonroot` for `runAsNonRoot`) and duplicate keys.
func decoder(t testing.TB) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, appsv1.AddToScheme(scheme))
	require.NoError(t, corev1.AddToScheme(scheme))
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}

// decodeManifest decodes every document of a (multi-document) YAML file, strictly. Documents
// that hold nothing (only comments, or an empty one after a trailing `---`) are skipped.
func decodeManifest(dec runtime.Decoder, data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d (%v): %w", i, gvk, err)
		}
		objs = append(objs, obj)
	}
}

// decodeKustomization decodes a kustomization file strictly into kustomization.
func decodeKustomization(data []byte) (kustomization, error) {
	var k kustomization
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return k, err
	}
	strictErrs, err := strictjson.UnmarshalStrict(j, &k)
	if err != nil {
		return k, err
	}
	return k, errors.Join(strictErrs...)
}

// load reads and decodes every file of dir. Anything that is not a YAML manifest or the
// kustomization fails, so nothing in the directory escapes the strict decoding.
func load(t *testing.T) recipe {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	dec := decoder(t)
	var rc recipe
	kustFound := false
	for _, e := range entries {
		name := e.Name()
		require.Truef(t, e.Type().IsRegular(), "%s: only manifest files belong in %s", name, dir)
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		if slices.Contains(kustomizationNames, name) {
			require.Falsef(t, kustFound, "%s: a second kustomization file", name)
			kustFound = true
			rc.kust, err = decodeKustomization(data)
			require.NoErrorf(t, err, "%s", name)
			continue
		}
		ext := filepath.Ext(name)
		require.Truef(t, ext == ".yaml" || ext == ".yml",
			"%s: not a YAML manifest; only manifests and the kustomization belong in %s", name, dir)
		objs, err := decodeManifest(dec, data)
		require.NoErrorf(t, err, "%s", name)
		require.NotEmptyf(t, objs, "%s: no object", name)
		rc.manifests = append(rc.manifests, name)
		for _, obj := range objs {
			rc.objects++
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				rc.statefulSets = append(rc.statefulSets, o)
			case *corev1.Service:
				rc.services = append(rc.services, o)
			default:
				t.Fatalf("%s: %T: the recipe has no business with this kind (add its checks here)", name, obj)
			}
		}
	}
	require.Truef(t, kustFound, "%s: no kustomization.yaml", dir)
	require.Len(t, rc.statefulSets, 1, "one StatefulSet")
	require.Len(t, rc.services, 1, "one Service")
	return rc
}

func TestManifestsDecodeStrictly(t *testing.T) {
	rc := load(t)
	t.Logf("%d manifest files, %d objects, all decoded strictly", len(rc.manifests), rc.objects)
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	rc := load(t)
	require.NoError(t, checkKustomization(rc.kust, rc.manifests))
}

func TestStatefulSet(t *testing.T) {
	rc := load(t)
	require.Empty(t, checkStatefulSet(rc.statefulSets[0]))
}

func TestHeadlessServiceGovernsStatefulSet(t *testing.T) {
	rc := load(t)
	require.Empty(t, checkService(rc.services[0], rc.statefulSets[0]))
}

// TestStrictDecodingRejects plants mistakes in the real statefulset.yaml: each must fail to
// decode, while the file as it is decodes.
func TestStrictDecodingRejects(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(dir, "statefulset.yaml"))
	require.NoError(t, err)
	dec := decoder(t)
	_, err = decodeManifest(dec, orig)
	require.NoError(t, err, "the file as it is")

	for _, tc := range []struct{ name, old, new, want string }{
		{"misspelled case", "runAsNonRoot: true", "runAsNonroot: true", `unknown field "spec.template.spec.securityContext.runAsNonroot"`},
		{"misspelled case, container", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"},
		{"unknown field", "fsGroup: 10000", "fsGroups: 10000", `unknown field "spec.template.spec.securityContext.fsGroups"`},
		{"container field on the pod", "runAsNonRoot: true", "runAsNonRoot: true\n        readOnlyRootFilesystem: true",
			`unknown field "spec.template.spec.securityContext.readOnlyRootFilesystem"`},
		{"duplicate key", "runAsUser: 10000", "runAsUser: 10000\n        runAsUser: 0", "runAsUser"},
		{"wrong type", "runAsUser: 10000", `runAsUser: "10000"`, "runAsUser"},
		{"unknown kind", "kind: StatefulSet", "kind: StatefulSets", "StatefulSets"},
		{"no apiVersion", "apiVersion: apps/v1\n", "\n", "apiVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Truef(t, strings.Contains(string(orig), tc.old), "the mistake was not planted: %q not found", tc.old)
			bad := strings.Replace(string(orig), tc.old, tc.new, 1)
			_, err := decodeManifest(dec, []byte(bad))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			t.Logf("rejected: %.160s", err)
		})
	}

	t.Run("kustomization", func(t *testing.T) {
		_, err := decodeKustomization([]byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource:\n  - a.yaml\n"))
		require.ErrorContains(t, err, "resource")
		_, err = decodeKustomization([]byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nResources:\n  - a.yaml\n"))
		require.ErrorContains(t, err, "Resources")
	})
}

// TestChecksCatchPlantedBugs plants bugs that decode fine but break a promise: the checks must
// name each one.
func TestChecksCatchPlantedBugs(t *testing.T) {
	rc := load(t)
	container := func(s *appsv1.StatefulSet) *corev1.Container { return &s.Spec.Template.Spec.Containers[0] }
	setEnv := func(s *appsv1.StatefulSet, name, value string) {
		c := container(s)
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
				return
			}
		}
		t.Fatalf("no env %s to change", name)
	}
	mount := func(s *appsv1.StatefulSet, path string) *corev1.VolumeMount {
		c := container(s)
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].MountPath == path {
				return &c.VolumeMounts[i]
			}
		}
		t.Fatalf("nothing mounted at %s", path)
		return nil
	}
	for _, tc := range []struct {
		name   string
		plant  func(*appsv1.StatefulSet)
		caught string
	}{
		{"root", func(s *appsv1.StatefulSet) { *s.Spec.Template.Spec.SecurityContext.RunAsNonRoot = false }, "runAsNonRoot"},
		{"root in the container", func(s *appsv1.StatefulSet) { container(s).SecurityContext.RunAsUser = new(int64) }, "runAsUser 0"},
		{"other uid", func(s *appsv1.StatefulSet) { *s.Spec.Template.Spec.SecurityContext.RunAsUser = 1000 }, "runAsUser 1000"},
		{"no fsGroup", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.SecurityContext.FSGroup = nil }, "fsGroup"},
		{"writable root", func(s *appsv1.StatefulSet) { *container(s).SecurityContext.ReadOnlyRootFilesystem = false }, "readOnlyRootFilesystem"},
		{"escalation", func(s *appsv1.StatefulSet) { container(s).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"capabilities", func(s *appsv1.StatefulSet) {
			container(s).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}, "ALL"},
		{"short grace", func(s *appsv1.StatefulSet) { *s.Spec.Template.Spec.TerminationGracePeriodSeconds = 9 }, "terminationGracePeriodSeconds"},
		{"longer knob", func(s *appsv1.StatefulSet) { setEnv(s, "S6_SERVICES_GRACETIME", "60000") }, "terminationGracePeriodSeconds"},
		{"unparsable knob", func(s *appsv1.StatefulSet) { setEnv(s, "GATEWAY_DRAIN_TIMEOUT", "2 s") }, "GATEWAY_DRAIN_TIMEOUT"},
		{"read-only switch", func(s *appsv1.StatefulSet) { setEnv(s, "S6_READ_ONLY_ROOT", "0") }, "S6_READ_ONLY_ROOT"},
		{"probe verb", func(s *appsv1.StatefulSet) { container(s).ReadinessProbe.Exec.Command[1] = "list" }, "readinessProbe"},
		{"probe waits too long", func(s *appsv1.StatefulSet) {
			container(s).LivenessProbe.Exec.Command = []string{gatewayBin, "status", "--live", "--timeout=1m"}
		}, "livenessProbe"},
		// Issue 16: one bad profile must not take the replica out of DNS, nor restart it.
		{"readiness judges the gateways", func(s *appsv1.StatefulSet) {
			container(s).ReadinessProbe.Exec.Command = []string{gatewayBin, "status", "--check", "--timeout", "5s"}
		}, "readinessProbe: command"},
		{"liveness judges the gateways", func(s *appsv1.StatefulSet) {
			container(s).LivenessProbe.Exec.Command = []string{gatewayBin, "status", "--check"}
		}, "livenessProbe: command"},
		{"liveness is readiness", func(s *appsv1.StatefulSet) {
			container(s).LivenessProbe.Exec.Command = []string{gatewayBin, "status", "--ready"}
		}, "livenessProbe: command"},
		{"liveness over the optional endpoint, wrong path", func(s *appsv1.StatefulSet) {
			container(s).LivenessProbe.Exec = nil
			container(s).LivenessProbe.HTTPGet = &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString(metricsPort)}
		}, "livenessProbe: httpGet"},
		{"endpoint off", func(s *appsv1.StatefulSet) { setEnv(s, "GATEWAY_HTTP_ADDR", "") }, "GATEWAY_HTTP_ADDR"},
		{"endpoint elsewhere", func(s *appsv1.StatefulSet) { setEnv(s, "GATEWAY_HTTP_ADDR", ":9100") }, "containerPort"},
		{"no metrics port", func(s *appsv1.StatefulSet) { container(s).Ports = nil }, "containerPort"},
		{"no liveness", func(s *appsv1.StatefulSet) { container(s).LivenessProbe = nil }, "livenessProbe missing"},
		{"/run not mounted", func(s *appsv1.StatefulSet) { mount(s, "/run").MountPath = "/var/run" }, "nothing mounted at /run"},
		{"/tmp on the host", func(s *appsv1.StatefulSet) {
			for i, v := range s.Spec.Template.Spec.Volumes {
				if v.Name == mount(s, "/tmp").Name {
					s.Spec.Template.Spec.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}
				}
			}
		}, "/tmp"},
		{"data root elsewhere", func(s *appsv1.StatefulSet) { mount(s, dataRoot).MountPath = "/data" }, "nothing mounted at " + dataRoot},
		{"data root shared", func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates = nil }, "volumeClaimTemplate"},
		{"pulled image", func(s *appsv1.StatefulSet) { container(s).ImagePullPolicy = corev1.PullAlways }, "imagePullPolicy"},
		{"selector", func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = map[string]string{"app": "other"} }, "selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := rc.statefulSets[0].DeepCopy()
			tc.plant(sts)
			problems := strings.Join(checkStatefulSet(sts), "\n")
			require.Contains(t, problems, tc.caught)
			t.Logf("caught: %s", strings.ReplaceAll(problems, "\n", "; "))
		})
	}

	t.Run("service", func(t *testing.T) {
		svc := rc.services[0].DeepCopy()
		svc.Spec.ClusterIP = ""
		require.Contains(t, strings.Join(checkService(svc, rc.statefulSets[0]), "\n"), "clusterIP")
		svc = rc.services[0].DeepCopy()
		svc.Name = "gateways"
		require.Contains(t, strings.Join(checkService(svc, rc.statefulSets[0]), "\n"), "serviceName")
		svc = rc.services[0].DeepCopy()
		svc.Spec.Selector = map[string]string{"app": "other"}
		require.Contains(t, strings.Join(checkService(svc, rc.statefulSets[0]), "\n"), "selector")
		svc = rc.services[0].DeepCopy()
		svc.Spec.Ports = nil
		require.Contains(t, strings.Join(checkService(svc, rc.statefulSets[0]), "\n"), "metrics")
		svc = rc.services[0].DeepCopy()
		svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9100)
		require.Contains(t, strings.Join(checkService(svc, rc.statefulSets[0]), "\n"), "metrics")
	})
	t.Run("kustomization", func(t *testing.T) {
		k := rc.kust
		k.Resources = slices.DeleteFunc(slices.Clone(k.Resources), func(s string) bool { return s == "service.yaml" })
		require.ErrorContains(t, checkKustomization(k, rc.manifests), "service.yaml")
		k = rc.kust
		k.Resources = append(slices.Clone(k.Resources), "ingress.yaml")
		require.ErrorContains(t, checkKustomization(k, rc.manifests), "ingress.yaml")
	})
}

// TestKustomizeBuild renders the kustomization with `kubectl kustomize` when kubectl is there,
// and decodes the result strictly too: the labels land on every object and nothing is lost.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	rc := load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoErrorf(t, err, "kubectl kustomize: %s", stderr.String())
	objs, err := decodeManifest(decoder(t), out)
	require.NoError(t, err)
	require.Len(t, objs, rc.objects)
	want := maps.Clone(rc.kust.CommonLabels)
	if want == nil {
		want = map[string]string{}
	}
	for _, l := range rc.kust.Labels {
		maps.Copy(want, l.Pairs)
	}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			// An `images:` override (a pinned upgrade) is kustomize's business: check it
			// landed, then hold the rest to the same promises.
			c := &o.Spec.Template.Spec.Containers[0]
			require.Equal(t, wantImage(rc.kust), c.Image)
			c.Image = image
			require.Empty(t, checkStatefulSet(o))
			require.Subset(t, o.Labels, want)
			require.Subset(t, o.Spec.Template.Labels, want)
		case *corev1.Service:
			require.Empty(t, checkService(o, rc.statefulSets[0]))
			require.Subset(t, o.Labels, want)
		default:
			t.Fatalf("kubectl kustomize made a %T", obj)
		}
	}
}

// wantImage is the image after the kustomization's `images:` overrides.
func wantImage(k kustomization) string {
	name, tag, _ := strings.Cut(image, ":")
	for _, im := range k.Images {
		if im.Name != name {
			continue
		}
		if im.NewName != "" {
			name = im.NewName
		}
		if im.NewTag != "" {
			tag = im.NewTag
		}
		if im.Digest != "" {
			return name + "@" + im.Digest
		}
	}
	return name + ":" + tag
}

// checkKustomization: the kind, labels, and resources that are exactly the manifests.
func checkKustomization(k kustomization, manifests []string) error {
	var errs []error
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		errs = append(errs, fmt.Errorf("kustomization: apiVersion/kind %q/%q", k.APIVersion, k.Kind))
	}
	labels := len(k.CommonLabels)
	for _, l := range k.Labels {
		labels += len(l.Pairs)
	}
	if labels == 0 {
		errs = append(errs, errors.New("kustomization: no labels or commonLabels"))
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			errs = append(errs, fmt.Errorf("kustomization: %s listed twice", r))
		}
		listed[r] = true
		if !slices.Contains(manifests, r) {
			errs = append(errs, fmt.Errorf("kustomization: %s is listed but is no manifest of %s", r, dir))
		}
	}
	for _, m := range manifests {
		if !listed[m] {
			errs = append(errs, fmt.Errorf("kustomization: %s is not listed in resources", m))
		}
	}
	return errors.Join(errs...)
}

// checkStatefulSet returns every broken promise of the StatefulSet, one line each.
func checkStatefulSet(sts *appsv1.StatefulSet) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		bad("%d containers, want 1", len(spec.Containers))
		return p
	}
	c := spec.Containers[0]

	// Image: built locally, never pulled.
	if c.Image != image {
		bad("image %q, want %q", c.Image, image)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent && c.ImagePullPolicy != corev1.PullNever {
		bad("imagePullPolicy %q, want IfNotPresent or Never", c.ImagePullPolicy)
	}

	// Identity: the container's securityContext overrides the pod's.
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	nonRoot := firstBool(csc.RunAsNonRoot, pod.RunAsNonRoot)
	if nonRoot == nil || !*nonRoot {
		bad("runAsNonRoot is not true")
	}
	if v := firstInt(csc.RunAsUser, pod.RunAsUser); v == nil || *v != serviceUID {
		bad("runAsUser %s, want %d", show(v), serviceUID)
	}
	if v := firstInt(csc.RunAsGroup, pod.RunAsGroup); v == nil || *v != serviceUID {
		bad("runAsGroup %s, want %d", show(v), serviceUID)
	}
	if pod.FSGroup == nil || *pod.FSGroup != serviceUID {
		bad("fsGroup %s, want %d", show(pod.FSGroup), serviceUID)
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		bad("allowPrivilegeEscalation is not false")
	}
	if csc.Privileged != nil && *csc.Privileged {
		bad("privileged")
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		bad("readOnlyRootFilesystem is not true")
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		bad("capabilities do not drop ALL")
	} else if len(csc.Capabilities.Add) > 0 {
		bad("capabilities add %v", csc.Capabilities.Add)
	}

	// Environment.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue
		}
		env[e.Name] = e.Value
	}
	for _, name := range []string{"S6_READ_ONLY_ROOT", "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"} {
		if env[name] != "1" {
			bad("env %s=%q, want \"1\"", name, env[name])
		}
	}

	// Stop budget: kubelet's SIGKILL comes after /init's own stop.
	budget, err := stopBudget(env)
	switch {
	case err != nil:
		bad("%v", err)
	case spec.TerminationGracePeriodSeconds == nil:
		bad("terminationGracePeriodSeconds unset (the default 30 s is not checked against the knobs)")
	default:
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		if grace < budget+graceMargin {
			bad("terminationGracePeriodSeconds %v < stop budget %v + margin %v", grace, budget, graceMargin)
		}
	}

	// Volumes: emptyDirs at /run and /tmp, the claim template at the data root.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	claims := map[string]corev1.PersistentVolumeClaim{}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = pvc
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[filepath.Clean(m.MountPath)] = m
	}
	for _, path := range []string{"/run", "/tmp"} {
		m, ok := mounts[path]
		if !ok {
			bad("nothing mounted at %s", path)
			continue
		}
		if v, ok := volumes[m.Name]; !ok || v.EmptyDir == nil {
			bad("%s: volume %q is not an emptyDir", path, m.Name)
		}
		if m.ReadOnly || m.SubPath != "" || m.SubPathExpr != "" {
			bad("%s: mounted read-only or from a sub-path", path)
		}
	}
	if m, ok := mounts[dataRoot]; !ok {
		bad("nothing mounted at %s", dataRoot)
	} else {
		pvc, ok := claims[m.Name]
		switch {
		case !ok:
			bad("%s: volume %q is not a volumeClaimTemplate (one data root per replica)", dataRoot, m.Name)
		case volumes[m.Name].Name != "":
			bad("%s: pod volume %q shadows the volumeClaimTemplate", dataRoot, m.Name)
		case m.ReadOnly || m.SubPath != "" || m.SubPathExpr != "":
			bad("%s: mounted read-only or from a sub-path", dataRoot)
		case !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) && !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOncePod):
			bad("%s: claim %q is not ReadWriteOnce(Pod)", dataRoot, m.Name)
		default:
			if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
				bad("%s: claim %q requests no storage", dataRoot, m.Name)
			}
		}
	}

	// The HTTP endpoint: on, on the port the container declares as `metrics`.
	addr := env["GATEWAY_HTTP_ADDR"]
	if addr == "" {
		bad("env GATEWAY_HTTP_ADDR is not set: the metrics endpoint is off")
	} else if _, port, err := net.SplitHostPort(addr); err != nil {
		bad("env GATEWAY_HTTP_ADDR=%q: %v", addr, err)
	} else if p := containerPort(&c, metricsPort); p == 0 || strconv.Itoa(int(p)) != port {
		bad("GATEWAY_HTTP_ADDR=%q: no containerPort %q with port %s (found %d)", addr, metricsPort, port, p)
	}

	// Probes: the container's liveness and readiness, never one gateway's health, bounded
	// below the probe's own timeout.
	probes := []struct {
		name     string
		probe    *corev1.Probe
		required bool
		flag     string // the exec probe's `gateway status` flag
		path     string // the httpGet probe's path on the metrics port
	}{
		{"livenessProbe", c.LivenessProbe, true, "--live", "/healthz"},
		{"readinessProbe", c.ReadinessProbe, true, "--ready", "/readyz"},
		{"startupProbe", c.StartupProbe, false, "--ready", "/readyz"},
	}
	for _, pr := range probes {
		if pr.probe == nil {
			if pr.required {
				bad("%s missing", pr.name)
			}
			continue
		}
		if err := checkProbe(pr.probe, pr.flag, pr.path); err != nil {
			bad("%s: %v", pr.name, err)
		}
	}
	if lp := c.LivenessProbe; lp != nil && time.Duration(lp.PeriodSeconds*lp.FailureThreshold)*time.Second < time.Minute {
		bad("livenessProbe gives up after %d×%ds: under a minute restarts every gateway of the replica too eagerly",
			lp.FailureThreshold, lp.PeriodSeconds)
	}

	// Selector and governing Service.
	if sts.Spec.ServiceName == "" {
		bad("no serviceName")
	}
	if sts.Spec.Selector == nil || len(sts.Spec.Selector.MatchLabels) == 0 || len(sts.Spec.Selector.MatchExpressions) > 0 {
		bad("selector must be non-empty matchLabels only")
	} else if !subset(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
		bad("selector %v does not match the template's labels %v", sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels)
	}
	return p
}

// checkProbe: with explicit timing, either an exec of `gateway status FLAG` (--live or
// --ready: never --check, the gateways' verdict) whose own --timeout (if given) ends before
// the kubelet's timeoutSeconds, or an httpGet of path on the metrics port.
func checkProbe(pr *corev1.Probe, want, path string) error {
	if pr.PeriodSeconds <= 0 || pr.TimeoutSeconds <= 0 || pr.FailureThreshold <= 0 {
		return fmt.Errorf("periodSeconds %d, timeoutSeconds %d, failureThreshold %d: set all three",
			pr.PeriodSeconds, pr.TimeoutSeconds, pr.FailureThreshold)
	}
	if g := pr.HTTPGet; g != nil {
		if g.Path != path || g.Port.String() != metricsPort {
			return fmt.Errorf("httpGet %s on port %s, want %s on port %s", g.Path, g.Port.String(), path, metricsPort)
		}
		return nil
	}
	if pr.Exec == nil {
		return errors.New("neither an exec nor an httpGet probe")
	}
	cmd := pr.Exec.Command
	if len(cmd) < 3 || cmd[0] != gatewayBin || cmd[1] != "status" || !slices.Contains(cmd[2:], want) {
		return fmt.Errorf("command %q, want [%s status %s ...]", cmd, gatewayBin, want)
	}
	// --live and --ready never wait (no boot wait, no lock); an explicit --timeout is held
	// to the kubelet's all the same.
	wait := time.Duration(0)
	args := cmd[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-") // Go flags: -x or --x
		v, inline := strings.CutPrefix(flag, "timeout=")
		inline = inline && flag != a
		switch {
		case a == want:
			continue
		case flag == "timeout" && flag != a:
			if i+1 == len(args) {
				return errors.New("--timeout without a value")
			}
			i++
			v = args[i]
		case !inline:
			return fmt.Errorf("unexpected argument %q", a)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("--timeout %q: %v", v, err)
		}
		wait = d
	}
	if wait >= time.Duration(pr.TimeoutSeconds)*time.Second {
		return fmt.Errorf("gateway waits up to %v, not under timeoutSeconds %d", wait, pr.TimeoutSeconds)
	}
	return nil
}

// stopBudget is the longest a stop may take inside the container, from the knobs (which must be
// set explicitly): S6_SERVICES_GRACETIME for the services (the gateways' tree among them) to go
// down, GATEWAY_DRAIN_TIMEOUT for a gateway's child, S6_KILL_GRACETIME before /init's SIGKILL.
// The drain happens within the services' grace; adding it keeps the budget on the safe side.
func stopBudget(env map[string]string) (time.Duration, error) {
	var sum time.Duration
	for _, name := range []string{"S6_SERVICES_GRACETIME", "S6_KILL_GRACETIME"} {
		v, ok := env[name]
		if !ok {
			return 0, fmt.Errorf("env %s is not set explicitly (needed to check terminationGracePeriodSeconds)", name)
		}
		// As pkg/boot/knobs.go: a non-negative integer of milliseconds.
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
		if err != nil {
			return 0, fmt.Errorf("env %s=%q is not a number of milliseconds", name, v)
		}
		sum += time.Duration(n) * time.Millisecond
	}
	v, ok := env["GATEWAY_DRAIN_TIMEOUT"]
	if !ok {
		return 0, errors.New("env GATEWAY_DRAIN_TIMEOUT is not set explicitly (needed to check terminationGracePeriodSeconds)")
	}
	// As pkg/config.ParseDuration: a Go duration or a number of seconds, not negative.
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("env GATEWAY_DRAIN_TIMEOUT=%q is not a duration", v)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("env GATEWAY_DRAIN_TIMEOUT=%q is negative", v)
	}
	return sum + d, nil
}

// containerPort is the port number of c's port called name, or 0.
func containerPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// checkService: headless, named as the StatefulSet's serviceName, selecting its pods, and
// exposing the metrics port.
func checkService(svc *corev1.Service, sts *appsv1.StatefulSet) []string {
	var p []string
	exposed := false
	if cs := sts.Spec.Template.Spec.Containers; len(cs) == 1 {
		want := containerPort(&cs[0], metricsPort)
		for _, sp := range svc.Spec.Ports {
			tp := sp.TargetPort
			if sp.Name == metricsPort && want != 0 && (tp.String() == metricsPort || tp.IntValue() == int(want) || (tp.String() == "0" && sp.Port == want)) {
				exposed = true
			}
		}
	}
	if !exposed {
		p = append(p, fmt.Sprintf("service %s: no port %q to the container's %q port", svc.Name, metricsPort, metricsPort))
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		p = append(p, fmt.Sprintf("service %s: clusterIP %q, want None (headless)", svc.Name, svc.Spec.ClusterIP))
	}
	if svc.Name != sts.Spec.ServiceName {
		p = append(p, fmt.Sprintf("service %s is not the StatefulSet's serviceName %q", svc.Name, sts.Spec.ServiceName))
	}
	if len(svc.Spec.Selector) == 0 {
		p = append(p, fmt.Sprintf("service %s: no selector", svc.Name))
	} else if !subset(svc.Spec.Selector, sts.Spec.Template.Labels) ||
		(sts.Spec.Selector != nil && !maps.Equal(svc.Spec.Selector, sts.Spec.Selector.MatchLabels)) {
		p = append(p, fmt.Sprintf("service %s: selector %v is not the StatefulSet's selector", svc.Name, svc.Spec.Selector))
	}
	return p
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if bv, ok := big[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func firstBool(vs ...*bool) *bool {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstInt(vs ...*int64) *int64 {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func show(v *int64) string {
	if v == nil {
		return "unset"
	}
	return strconv.FormatInt(*v, 10)
}
