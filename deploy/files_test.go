package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// layout is where one node listens.
type layout struct{ client, raft, http int }

// refLayout returns the reference layout of node id (COMPAT.md: client
// 9090+id, internal 6000+id; HTTP 8080+id), read off the binary's own
// --help text so the files and the binary cannot drift apart.
func refLayout(t *testing.T) func(id int) layout {
	t.Helper()
	flags, _ := helpFlags(t)
	base := func(name string) int {
		m := regexp.MustCompile(`(\d+)\+node-id`).FindStringSubmatch(flags[name].Usage)
		if m == nil {
			t.Fatalf("--%s usage %q names no <base>+node-id default", name, flags[name].Usage)
		}
		return atoi(t, name, m[1])
	}
	c, r, h := base("client-port"), base("raft-port"), base("http-port")
	if c+1 != 9091 || r+1 != 6001 {
		t.Fatalf("walrus --help: node 1 on client %d, raft %d; COMPAT.md says 9091 and 6001", c+1, r+1)
	}
	return func(id int) layout { return layout{c + id, r + id, h + id} }
}

// nodeArgs checks a node's command line against the binary's flags and the
// expected layout, and returns the parsed flags.
func checkNodeArgs(t *testing.T, what string, cmdline []string, id int, want layout) []arg {
	t.Helper()
	flags, _ := helpFlags(t)
	args, err := parseArgs(cmdline, flags)
	if err != nil {
		t.Fatalf("%s: %v\n(command line: %q)", what, err, cmdline)
	}
	if v, _ := lookup(args, "node-id"); v != strconv.Itoa(id) {
		t.Errorf("%s: --node-id %q, want %d", what, v, id)
	}
	for _, p := range []struct {
		flags []string
		want  int
	}{{[]string{"client-port", "port"}, want.client}, {[]string{"raft-port"}, want.raft}, {[]string{"http-port"}, want.http}} {
		v, ok := lookup(args, p.flags...)
		if !ok {
			t.Errorf("%s: sets no --%s (spell the port out: it is what firewalls and probes are written against)", what, p.flags[0])
			continue
		}
		if atoi(t, what+" --"+p.flags[0], v) != p.want {
			t.Errorf("%s: --%s %s, want %d", what, p.flags[0], v, p.want)
		}
	}
	return args
}

// ---- compose ------------------------------------------------------------------

type composeFile struct {
	Name     string                    `yaml:"name"`
	XWalrus  any                       `yaml:"x-walrus"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Environment     map[string]string `yaml:"environment"`
	Hostname        string            `yaml:"hostname"`
	DependsOn       []string          `yaml:"depends_on"`
	Command         []string          `yaml:"command"`
	Ports           []string          `yaml:"ports"`
	Expose          []string          `yaml:"expose"`
	Volumes         []string          `yaml:"volumes"`
	Healthcheck     struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	var c composeFile
	// strict: a misspelt key (helthcheck) fails here instead of being
	// ignored by a reader that does not know it
	mustYAML(t, readFile(t, "deploy", "docker", "compose.yaml"), &c, true)
	return &c
}

func composeNames(c *composeFile) []string {
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	ref := refLayout(t)
	envVars := envVarsOfNode(t)
	if got := composeNames(c); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
		t.Fatalf("services %v, want node1 node2 node3", got)
	}
	node1Raft := ""
	for id := 1; id <= 3; id++ {
		name := fmt.Sprintf("node%d", id)
		s := c.Services[name]
		want := ref(id)
		args := checkNodeArgs(t, name, s.Command, id, want)
		for _, h := range []string{"client-host", "raft-host", "http-host"} {
			if v, _ := lookup(args, h); v != "0.0.0.0" {
				t.Errorf("%s: --%s %q, want 0.0.0.0 (reachable through the published ports and the compose network)", name, h, v)
			}
		}
		if v, _ := lookup(args, "raft-advertise-host"); v != name || s.Hostname != name {
			t.Errorf("%s: --raft-advertise-host %q, hostname %q; want the service name", name, v, s.Hostname)
		}
		for _, f := range []string{"client-advertise-host", "http-advertise-host"} {
			if v, _ := lookup(args, f); v != name {
				t.Errorf("%s: --%s %q; want the service name (NODES and LEADER must name a reachable host)", name, f, v)
			}
		}
		joins := lookupAll(args, "join")
		if id == 1 {
			node1Raft = fmt.Sprintf("node1:%d", want.raft)
			if len(joins) != 0 {
				t.Errorf("node1 must bootstrap (no --join), has %v", joins)
			}
		} else if !slices.Equal(joins, []string{node1Raft}) {
			t.Errorf("%s: --join %v, want [%s] (node 1's internal port)", name, joins, node1Raft)
		}
		// ports: client and HTTP published 1:1, the internal port on the
		// compose network only
		for _, p := range []int{want.client, want.http} {
			if !slices.Contains(s.Ports, fmt.Sprintf("%d:%d", p, p)) {
				t.Errorf("%s: ports %v lack %d:%d", name, s.Ports, p, p)
			}
		}
		for _, p := range s.Ports {
			_, target, _ := strings.Cut(p, ":")
			if n := atoi(t, name+" port", target); n != want.client && n != want.http {
				t.Errorf("%s: publishes %s: the node does not listen on %d", name, p, n)
			}
		}
		if !slices.Equal(s.Expose, []string{strconv.Itoa(want.raft)}) {
			t.Errorf("%s: expose %v, want [%d]", name, s.Expose, want.raft)
		}
		// data dir on a named volume
		dataDir, _ := lookup(args, "data-dir")
		if len(s.Volumes) != 1 {
			t.Fatalf("%s: volumes %v, want one", name, s.Volumes)
		}
		vol := strings.Split(s.Volumes[0], ":")
		if len(vol) < 2 || vol[1] != dataDir {
			t.Errorf("%s: volume %q is not mounted at --data-dir %q", name, s.Volumes[0], dataDir)
		}
		if _, ok := c.Volumes[vol[0]]; !ok || strings.HasPrefix(vol[0], "/") || strings.HasPrefix(vol[0], ".") {
			t.Errorf("%s: volume %q is not a named volume declared under volumes:", name, vol[0])
		}
		hc := strings.Join(s.Healthcheck.Test, " ")
		if !strings.Contains(hc, fmt.Sprintf("http://127.0.0.1:%d/readyz", want.http)) {
			t.Errorf("%s: health check %q does not ask this node's /readyz", name, hc)
		}
		for k, v := range s.Environment {
			if !slices.Contains(envVars, k) {
				t.Errorf("%s: environment %s is not read by walrus (it reads %v)", name, k, envVars)
			}
			if _, err := strconv.ParseUint(composeInterpolate(v), 10, 64); err != nil {
				t.Errorf("%s: %s=%q is not a number", name, k, composeInterpolate(v))
			}
		}
		if s.Image != c.Services["node1"].Image || s.Image == "" {
			t.Errorf("%s: image %q differs from node1's", name, s.Image)
		}
		ctx := filepath.Join(repoPath("deploy", "docker"), s.Build.Context)
		if ctx != repoRoot {
			t.Errorf("%s: build context %s is not the repository root", name, ctx)
		}
		if _, err := os.Stat(filepath.Join(ctx, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: dockerfile: %v", name, err)
		}
		if id > 1 && !slices.Contains(s.DependsOn, "node1") {
			t.Errorf("%s: should start after node1 (depends_on)", name)
		}
	}
}

// ---- Dockerfile --------------------------------------------------------------

func TestDockerfile(t *testing.T) {
	df, err := parseDockerfile(readFile(t, "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(df.stages))
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]
	if build.from != "golang:1.26" || build.name == "" {
		t.Errorf("builder stage FROM %s AS %q, want golang:1.26 AS <name>", build.from, build.name)
	}
	if strings.HasPrefix(final.from, "golang") {
		t.Errorf("runtime stage is %s: want a small image, not the toolchain", final.from)
	}
	// both binaries: built static (the tests build them with exactly these
	// commands) and copied into the runtime stage, walrus-cli on PATH
	copied := map[string]string{}
	for _, b := range []struct{ pkg, bin string }{{"./cmd/walrus", walrusBin(t)}, {"./cmd/walrus-cli", walrusCLIBin(t)}} {
		run, out, err := df.buildCommand(b.pkg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(run, "CGO_ENABLED=0") {
			t.Errorf("build %q: CGO_ENABLED=0 missing; golang:1.26 links glibc dynamically otherwise, which %s lacks", run, final.from)
		}
		if static, err := isStatic(b.bin); err != nil || !static {
			t.Errorf("%q gives a dynamically linked binary (static=%v, err=%v)", run, static, err)
		}
		for _, c := range final.all("COPY") {
			f := strings.Fields(c)
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == out {
				copied[b.pkg] = f[2]
			}
		}
		if copied[b.pkg] == "" {
			t.Fatalf("the runtime stage does not COPY --from=%s %s", build.name, out)
		}
	}
	dest := copied["./cmd/walrus"]
	if d := copied["./cmd/walrus-cli"]; d != "/usr/local/bin/walrus-cli" {
		t.Errorf("walrus-cli is copied to %s, want /usr/local/bin/walrus-cli (on PATH for exec)", d)
	}
	ep, err := jsonArray(final.last("ENTRYPOINT"))
	if err != nil || len(ep) != 1 || ep[0] != dest {
		t.Errorf("ENTRYPOINT %q, want [%q] (exec form, the walrus binary)", final.last("ENTRYPOINT"), dest)
	}
	if u := final.last("USER"); u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("USER %q: the image must run as a non-root user", u)
	}
	var exposed []int
	for _, e := range final.all("EXPOSE") {
		for _, p := range strings.Fields(e) {
			exposed = append(exposed, atoi(t, "EXPOSE", strings.TrimSuffix(p, "/tcp")))
		}
	}
	l := refLayout(t)(1)
	want := []int{l.client, l.raft, l.http}
	slices.Sort(exposed)
	slices.Sort(want)
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want node 1's ports %v", exposed, want)
	}
	vol, err := jsonArray(final.last("VOLUME"))
	if err != nil || len(vol) != 1 {
		t.Fatalf("VOLUME %q: want one path in exec form", final.last("VOLUME"))
	}
	// the data dir the compose file and the manifest use is the volume
	for _, s := range loadCompose(t).Services {
		flags, _ := helpFlags(t)
		args, _ := parseArgs(s.Command, flags)
		if d, _ := lookup(args, "data-dir"); d != vol[0] {
			t.Errorf("compose --data-dir %q is not the image's VOLUME %q", d, vol[0])
		}
	}
	// CMD: the default arguments must be flags walrus has
	cmd, err := jsonArray(final.last("CMD"))
	if err != nil {
		t.Fatal(err)
	}
	flags, _ := helpFlags(t)
	if _, err := parseArgs(cmd, flags); err != nil {
		t.Errorf("CMD %v: %v", cmd, err)
	}
	// what the builder copies first exists
	for _, c := range build.all("COPY") {
		f := strings.Fields(c)
		for _, src := range f[:len(f)-1] {
			if src == "." || strings.HasPrefix(src, "--") {
				continue
			}
			if _, err := os.Stat(repoPath(src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
		}
	}
}

// ---- Kubernetes ---------------------------------------------------------------

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sDoc struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   k8sMeta   `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type k8sServiceSpec struct {
	Type                     string            `yaml:"type"`
	ClusterIP                string            `yaml:"clusterIP"`
	PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
	Selector                 map[string]string `yaml:"selector"`
	Ports                    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sStatefulSetSpec struct {
	ServiceName         string `yaml:"serviceName"`
	Replicas            int    `yaml:"replicas"`
	PodManagementPolicy string `yaml:"podManagementPolicy"`
	Selector            struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			SecurityContext struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
				RunAsUser    int  `yaml:"runAsUser"`
				FSGroup      int  `yaml:"fsGroup"`
			} `yaml:"securityContext"`
			Containers []k8sContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata k8sMeta `yaml:"metadata"`
	} `yaml:"volumeClaimTemplates"`
}

// k8sManifest is deploy/k8s/walrus.yaml, decoded.
type k8sManifest struct {
	services map[string]k8sServiceSpec
	stsName  string
	sts      k8sStatefulSetSpec
	kinds    []string
}

func loadK8s(t *testing.T) *k8sManifest {
	t.Helper()
	m := &k8sManifest{services: map[string]k8sServiceSpec{}}
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, "deploy", "k8s", "walrus.yaml")))
	for {
		var d k8sDoc
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatal(err)
		}
		if d.Kind == "" {
			continue // a document of comments only
		}
		m.kinds = append(m.kinds, d.Kind)
		switch d.Kind {
		case "Service":
			var s k8sServiceSpec
			if err := d.Spec.Decode(&s); err != nil {
				t.Fatalf("Service %s: %v", d.Metadata.Name, err)
			}
			m.services[d.Metadata.Name] = s
		case "StatefulSet":
			if err := d.Spec.Decode(&m.sts); err != nil {
				t.Fatalf("StatefulSet: %v", err)
			}
			m.stsName = d.Metadata.Name
		}
	}
	return m
}

func (m *k8sManifest) container(t *testing.T) k8sContainer {
	t.Helper()
	if len(m.sts.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(m.sts.Template.Spec.Containers))
	}
	return m.sts.Template.Spec.Containers[0]
}

func (c k8sContainer) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func subset(sub, super map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

// podArgs runs the container's entrypoint script for one pod with a stub
// walrus on PATH that prints its arguments, and returns them.
func podArgs(t *testing.T, c k8sContainer, podName string, extraEnv ...string) []string {
	t.Helper()
	if !slices.Equal(c.Command, []string{"/bin/sh", "-c"}) || len(c.Args) != 1 {
		t.Fatalf("want command [/bin/sh -c] and one script argument, got %q %d args", c.Command, len(c.Args))
	}
	stub := t.TempDir()
	if err := os.WriteFile(filepath.Join(stub, "walrus"), []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.Command[0], c.Command[1], c.Args[0])
	cmd.Env = append([]string{"PATH=" + stub + ":/usr/bin:/bin", "POD_NAME=" + podName}, extraEnv...)
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("entrypoint script for %s: %v", podName, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func TestKubernetesManifest(t *testing.T) {
	m := loadK8s(t)
	for _, k := range []string{"Service", "StatefulSet"} {
		if !slices.Contains(m.kinds, k) {
			t.Fatalf("no %s in the manifest (kinds %v)", k, m.kinds)
		}
	}
	s := m.sts
	headless, ok := m.services[s.ServiceName]
	if !ok {
		t.Fatalf("serviceName %q names no Service of the manifest", s.ServiceName)
	}
	if headless.ClusterIP != "None" || !headless.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v; want a headless service that publishes not-ready pods (they must find each other before any is ready)",
			s.ServiceName, headless.ClusterIP, headless.PublishNotReadyAddresses)
	}
	if s.Replicas != 3 {
		t.Errorf("replicas %d, want 3", s.Replicas)
	}
	if s.PodManagementPolicy != "Parallel" && s.PodManagementPolicy != "OrderedReady" {
		t.Errorf("podManagementPolicy %q", s.PodManagementPolicy)
	}
	labels := s.Template.Metadata.Labels
	if !subset(s.Selector.MatchLabels, labels) {
		t.Errorf("selector %v does not match the pod labels %v", s.Selector.MatchLabels, labels)
	}
	c := m.container(t)
	want := layout{c.port("client"), c.port("raft"), c.port("http")}
	if ref := refLayout(t)(1); want != ref {
		t.Errorf("container ports %+v, want node 1's %+v (every pod has its own IP, so all use node 1's ports)", want, ref)
	}
	clientSvc := false
	for name, svc := range m.services {
		if !subset(svc.Selector, labels) {
			t.Errorf("Service %s: selector %v does not match the pod labels %v", name, svc.Selector, labels)
		}
		for _, p := range svc.Ports {
			if c.port(p.TargetPort) != p.Port {
				t.Errorf("Service %s port %s: %d -> %q, container has %q on %d", name, p.Name, p.Port, p.TargetPort, p.TargetPort, c.port(p.TargetPort))
			}
			if name != s.ServiceName && p.TargetPort == "client" {
				clientSvc = true
			}
		}
	}
	if !clientSvc {
		t.Error("no client Service (a non-headless Service with the client port)")
	}
	for _, p := range []struct {
		what  string
		probe *k8sProbe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != "http" {
			t.Errorf("%s: want httpGet %s on port http", p.what, p.path)
		}
	}
	if c.StartupProbe != nil && (c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Port != "http") {
		t.Error("startupProbe: want httpGet on port http")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("resources.requests %v: want cpu and memory", c.Resources.Requests)
	}
	if sc := s.Template.Spec.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser == 0 || sc.FSGroup == 0 {
		t.Errorf("pod securityContext %+v: want non-root with an fsGroup (so the volume is writable)", sc)
	}
	// data on a claim template
	if len(c.VolumeMounts) != 1 || len(s.VolumeClaimTemplates) != 1 || c.VolumeMounts[0].Name != s.VolumeClaimTemplates[0].Metadata.Name {
		t.Fatalf("want one volume mount from the one volumeClaimTemplate; mounts %+v", c.VolumeMounts)
	}
	mount := c.VolumeMounts[0].MountPath
	podName, envVars := false, envVarsOfNode(t)
	for _, e := range c.Env {
		switch {
		case e.Name == "POD_NAME":
			podName = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		case strings.HasPrefix(e.Name, "WALRUS_") && !slices.Contains(envVars, e.Name):
			t.Errorf("env %s is not read by walrus (it reads %v)", e.Name, envVars)
		}
	}
	if !podName {
		t.Fatal("env POD_NAME must come from fieldRef metadata.name")
	}

	// the entrypoint: node id = ordinal + 1, pod 0 bootstraps, the others
	// join pod 0's internal port, each advertises its stable DNS name
	join0 := fmt.Sprintf("%s-0.%s:%d", m.stsName, s.ServiceName, want.raft)
	for ord := 0; ord < s.Replicas; ord++ {
		pod := fmt.Sprintf("%s-%d", m.stsName, ord)
		args := checkNodeArgs(t, pod, podArgs(t, c, pod), ord+1, want)
		if v, _ := lookup(args, "raft-advertise-host"); v != pod+"."+s.ServiceName {
			t.Errorf("%s: --raft-advertise-host %q, want %s.%s", pod, v, pod, s.ServiceName)
		}
		for _, f := range []string{"client-advertise-host", "http-advertise-host"} {
			if v, _ := lookup(args, f); v != pod+"."+s.ServiceName {
				t.Errorf("%s: --%s %q, want %s.%s", pod, f, v, pod, s.ServiceName)
			}
		}
		for _, h := range []string{"client-host", "raft-host", "http-host"} {
			if v, _ := lookup(args, h); v != "0.0.0.0" {
				t.Errorf("%s: --%s %q, want 0.0.0.0", pod, h, v)
			}
		}
		if d, _ := lookup(args, "data-dir"); d != mount {
			t.Errorf("%s: --data-dir %q is not the volume's mount path %q", pod, d, mount)
		}
		joins := lookupAll(args, "join")
		if ord == 0 && len(joins) != 0 {
			t.Errorf("%s must bootstrap (no --join), has %v", pod, joins)
		}
		if ord > 0 && !slices.Equal(joins, []string{join0}) {
			t.Errorf("%s: --join %v, want [%s]", pod, joins, join0)
		}
	}
	// JOIN_ADDR makes pod 0 join too (bringing back a pod 0 that lost its volume)
	other := fmt.Sprintf("%s-1.%s:%d", m.stsName, s.ServiceName, want.raft)
	args := checkNodeArgs(t, "pod 0 with JOIN_ADDR", podArgs(t, c, m.stsName+"-0", "JOIN_ADDR="+other), 1, want)
	if j := lookupAll(args, "join"); !slices.Equal(j, []string{other}) {
		t.Errorf("pod 0 with JOIN_ADDR=%s: --join %v", other, j)
	}
}

// ---- systemd ------------------------------------------------------------------

func TestSystemdUnit(t *testing.T) {
	unit := parseUnit(readFile(t, "deploy", "systemd", "walrus@.service"))
	svc := unit["Service"]
	one := func(k string) string {
		t.Helper()
		if len(svc[k]) != 1 {
			t.Fatalf("[Service] %s: %v, want one value", k, svc[k])
		}
		return svc[k][0]
	}
	if one("EnvironmentFile") != "/etc/walrus/node-%i.env" {
		t.Errorf("EnvironmentFile %q", one("EnvironmentFile"))
	}
	if one("Restart") != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", one("Restart"))
	}
	if u := one("User"); u == "" || u == "root" || u == "0" {
		t.Errorf("User=%s: want a service user", u)
	}
	stateDir := "/var/lib/" + one("StateDirectory")
	exec0 := strings.Fields(one("ExecStart"))[0]
	if !filepath.IsAbs(exec0) || filepath.Base(exec0) != "walrus" {
		t.Errorf("ExecStart runs %q, want an absolute path to walrus", exec0)
	}
	ref := refLayout(t)
	var node1Raft string
	envVars := envVarsOfNode(t)
	for _, id := range []int{1, 2} {
		name := fmt.Sprintf("node-%d.env", id)
		env := parseEnvFile(readFile(t, "deploy", "systemd", name))
		for k, v := range env {
			if k == "WALRUS_FLAGS" {
				continue
			}
			if !slices.Contains(envVars, k) {
				t.Errorf("%s: %s is not read by walrus (it reads %v)", name, k, envVars)
			} else if _, err := strconv.ParseUint(v, 10, 64); err != nil {
				t.Errorf("%s: %s=%q is not a number", name, k, v)
			}
		}
		cmdline := expandExecStart(one("ExecStart"), strconv.Itoa(id), env)
		args := checkNodeArgs(t, "walrus@"+strconv.Itoa(id), cmdline[1:], id, ref(id))
		if d, _ := lookup(args, "data-dir"); d != stateDir {
			t.Errorf("walrus@%d: --data-dir %q is not the StateDirectory %s", id, d, stateDir)
		}
		host, _ := lookup(args, "raft-host")
		adv, ok := lookup(args, "raft-advertise-host")
		if !ok {
			adv = host
		}
		port, _ := lookup(args, "raft-port")
		joins := lookupAll(args, "join")
		if id == 1 {
			node1Raft = adv + ":" + port
			if len(joins) != 0 {
				t.Errorf("node 1 must bootstrap (no --join), has %v", joins)
			}
		} else if !slices.Equal(joins, []string{node1Raft}) {
			t.Errorf("walrus@%d: --join %v, want [%s]", id, joins, node1Raft)
		}
	}
}

// TestSystemdVerify runs systemd-analyze verify on the unit (instance 1,
// ExecStart pointed at the test's binary) where the tool exists.
func TestSystemdVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	b := readFile(t, "deploy", "systemd", "walrus@.service")
	b = bytes.ReplaceAll(b, []byte("ExecStart=/usr/local/bin/walrus"), []byte("ExecStart="+walrusBin(t)))
	p := filepath.Join(t.TempDir(), "walrus@1.service")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
