package runtime

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiServerService is the Service in "default" whose variables every pod
// gets, whatever its enableServiceLinks says: client-go's in-cluster
// configuration reads KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT.
const apiServerService = "kubernetes"

// serviceEnv is the environment a pod in namespace ns gets from the
// Services (upstream getServiceEnvVarMap and envvars.FromServices): the
// API server's Service from "default" always, and with enableServiceLinks
// every Service of ns. Services without a cluster IP (headless) give none.
// services are those of "default" and of ns.
func serviceEnv(services []*v1.Service, ns string, enableServiceLinks bool) map[string]string {
	chosen := map[string]*v1.Service{}
	for _, s := range services {
		if !hasClusterIP(s) {
			continue
		}
		switch {
		case s.Namespace == ns && enableServiceLinks:
			// A Service of the pod's namespace named "kubernetes" wins
			// over the API server's, as upstream.
			chosen[s.Name] = s
		case s.Namespace == metav1.NamespaceDefault && s.Name == apiServerService:
			if _, taken := chosen[s.Name]; !taken {
				chosen[s.Name] = s
			}
		}
	}
	env := map[string]string{}
	for _, s := range chosen {
		addServiceVars(env, s)
	}
	return env
}

func hasClusterIP(s *v1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != v1.ClusterIPNone
}

// addServiceVars adds one Service's variables: <NAME>_SERVICE_HOST and
// _SERVICE_PORT (the first port), _SERVICE_PORT_<PORT NAME> for each named
// port, and the Docker link variables <NAME>_PORT and
// <NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR].
func addServiceVars(env map[string]string, s *v1.Service) {
	if len(s.Spec.Ports) == 0 {
		return
	}
	prefix := envVarName(s.Name)
	ip := s.Spec.ClusterIP
	env[prefix+"_SERVICE_HOST"] = ip
	env[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, p := range s.Spec.Ports {
		port := strconv.Itoa(int(p.Port))
		if p.Name != "" {
			env[prefix+"_SERVICE_PORT_"+envVarName(p.Name)] = port
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(v1.ProtocolTCP)
		}
		url := fmt.Sprintf("%s://%s", strings.ToLower(proto), net.JoinHostPort(ip, port))
		if i == 0 {
			env[prefix+"_PORT"] = url
		}
		link := fmt.Sprintf("%s_PORT_%s_%s", prefix, port, strings.ToUpper(proto))
		env[link] = url
		env[link+"_PROTO"] = strings.ToLower(proto)
		env[link+"_PORT"] = port
		env[link+"_ADDR"] = ip
	}
}

// envVarName turns a Service or port name into a variable name part.
func envVarName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}
