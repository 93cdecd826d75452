// Command etcd is upstream's etcd server (go.etcd.io/etcd/server/v3's
// etcdmain, what upstream's etcd binary runs), built here because the etcd
// module's own main package is not a published module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
