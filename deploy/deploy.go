package deploy

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// rbacYAML is deploy/rbac.yaml. Unexported, so that no caller can change
// what the package applies: RBAC hands out copies.
//
//go:embed rbac.yaml
var rbacYAML []byte

// RBAC returns deploy/rbac.yaml: the Namespace, ServiceAccount, ClusterRole
// and leader-election Role fleetpack needs, and their bindings.
func RBAC() []byte { return bytes.Clone(rbacYAML) }

// Names of the objects in RBAC.
const (
	Namespace          = "fleetpack"
	ServiceAccount     = "fleetpack"
	ClusterRole        = "fleetpack"
	LeaderElectionRole = "fleetpack-leader-election"
)

// RBACObjects decodes RBAC into typed objects, in file order.
func RBACObjects() ([]runtime.Object, error) {
	return Decode(rbacYAML)
}

// ApplyRBAC applies RBAC: the Namespace, the ServiceAccount, the roles and
// their bindings.
func ApplyRBAC(ctx context.Context, client kubernetes.Interface) error {
	objs, err := RBACObjects()
	if err != nil {
		return err
	}
	return Apply(ctx, client, objs)
}

// Decode decodes a multi-document YAML manifest into typed objects.
func Decode(manifest []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var out []runtime.Object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, obj)
	}
}

// Apply creates each object, or replaces it when it exists. It knows the
// kinds RBAC holds: Namespace, ServiceAccount, ClusterRole,
// ClusterRoleBinding, Role, RoleBinding.
func Apply(ctx context.Context, client kubernetes.Interface, objs []runtime.Object) error {
	for _, obj := range objs {
		if err := apply(ctx, client, obj); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, client kubernetes.Interface, obj runtime.Object) error {
	var err error
	var name string
	create, update := metav1.CreateOptions{}, metav1.UpdateOptions{}
	switch o := obj.(type) {
	case *corev1.Namespace:
		name = "Namespace " + o.Name
		_, err = client.CoreV1().Namespaces().Create(ctx, o, create)
		if apierrors.IsAlreadyExists(err) {
			err = nil // nothing in it to update
		}
	case *corev1.ServiceAccount:
		name = "ServiceAccount " + o.Namespace + "/" + o.Name
		_, err = client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, create)
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case *rbacv1.ClusterRole:
		name = "ClusterRole " + o.Name
		c := client.RbacV1().ClusterRoles()
		if _, err = c.Create(ctx, o, create); apierrors.IsAlreadyExists(err) {
			_, err = c.Update(ctx, o, update)
		}
	case *rbacv1.ClusterRoleBinding:
		name = "ClusterRoleBinding " + o.Name
		c := client.RbacV1().ClusterRoleBindings()
		if _, err = c.Create(ctx, o, create); apierrors.IsAlreadyExists(err) {
			_, err = c.Update(ctx, o, update)
		}
	case *rbacv1.Role:
		name = "Role " + o.Namespace + "/" + o.Name
		c := client.RbacV1().Roles(o.Namespace)
		if _, err = c.Create(ctx, o, create); apierrors.IsAlreadyExists(err) {
			_, err = c.Update(ctx, o, update)
		}
	case *rbacv1.RoleBinding:
		name = "RoleBinding " + o.Namespace + "/" + o.Name
		c := client.RbacV1().RoleBindings(o.Namespace)
		if _, err = c.Create(ctx, o, create); apierrors.IsAlreadyExists(err) {
			_, err = c.Update(ctx, o, update)
		}
	default:
		return fmt.Errorf("deploy.Apply: %T is not a kind it applies", obj)
	}
	if err != nil {
		return fmt.Errorf("applying %s: %w", name, err)
	}
	return nil
}
