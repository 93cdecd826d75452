// Package certificate owns the node's certificates from the certificates
// API, as upstream's kubelet gets them:
//
//   - TLS bootstrap: with --bootstrap-kubeconfig, when the --kubeconfig file
//     is missing or its client certificate has expired, a CSR for signer
//     kubernetes.io/kube-apiserver-client-kubelet (CN system:node:<name>, O
//     system:nodes) is made with the bootstrap credentials; the issued
//     certificate goes to <cert-dir>/kubelet-client-<timestamp>.pem with the
//     link kubelet-client-current.pem, and a kubeconfig pointing at that link
//     is written to --kubeconfig. The key of a pending request is kept in
//     kubelet-client.key.tmp, so a restart resumes with the same key.
//   - Client certificate rotation (rotateCertificates): client-go's
//     certificate Manager renews the certificate at 70-90 % of its lifetime;
//     the API clients present whatever it holds, and when it changes their
//     connections are closed so that watches reconnect with the new one.
//   - Serving certificates (serverTLSBootstrap): a CSR for signer
//     kubernetes.io/kubelet-serving with the Node's addresses as SANs, kept
//     as kubelet-server-current.pem and served by the kubelet API once issued.
//
// Deciding (which kubeconfig to use, the SANs of a serving certificate,
// what a change of certificate means for the connections) is done by pure
// functions; the files and the API are at the edges.
package certificate
