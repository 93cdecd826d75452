package pluginmanager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// Upstream's limits: connecting and GetInfo, then each status notification.
const (
	getInfoTimeout = 10 * time.Second
	notifyTimeout  = 5 * time.Second
)

// register carries out one registration of the plugin serving socketPath:
// GetInfo, the handler for its type validates and registers it, and the
// plugin is told the outcome. Upstream's messages are kept, since plugins
// log what they are notified of.
func register(ctx context.Context, socketPath string, gen uint64, handlers map[string]Handler) (*registration, error) {
	conn, err := grpc.NewClient("unix:"+socketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("RegisterPlugin error -- dial failed at socket %s, err: %w", socketPath, err)
	}
	defer conn.Close()
	client := registerapi.NewRegistrationClient(conn)

	infoCtx, cancel := context.WithTimeout(ctx, getInfoTimeout)
	info, err := client.GetInfo(infoCtx, &registerapi.InfoRequest{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("RegisterPlugin error -- failed to get plugin info using RPC GetInfo at socket %s, err: %w", socketPath, err)
	}
	handler, ok := handlers[info.Type]
	if !ok {
		return nil, notify(ctx, client, false, fmt.Sprintf("RegisterPlugin error -- no handler registered for plugin type: %s at socket %s", info.Type, socketPath))
	}
	endpoint := info.Endpoint
	if endpoint == "" {
		endpoint = socketPath
	}
	if err := handler.ValidatePlugin(info.Name, endpoint, info.SupportedVersions); err != nil {
		return nil, notify(ctx, client, false, fmt.Sprintf("RegisterPlugin error -- plugin validation failed with err: %v", err))
	}
	if err := handler.RegisterPlugin(info.Name, endpoint, info.SupportedVersions); err != nil {
		return nil, notify(ctx, client, false, fmt.Sprintf("RegisterPlugin error -- plugin registration failed with err: %v", err))
	}
	// Notified after RegisterPlugin, as upstream: a plugin told it is
	// registered is registered.
	if err := notify(ctx, client, true, ""); err != nil {
		// Unless berth is stopping: then, like every registered
		// plugin, it stays registered until the process ends.
		if ctx.Err() == nil {
			handler.DeRegisterPlugin(info.Name, endpoint)
		}
		return nil, fmt.Errorf("RegisterPlugin error -- failed to send registration status at socket %s, err: %w", socketPath, err)
	}
	return &registration{gen: gen, pluginType: info.Type, name: info.Name, endpoint: endpoint, handler: handler}, nil
}

// notify tells the plugin whether it is registered. With errStr set the
// registration failed: that is the error returned, whether or not the
// plugin heard of it.
func notify(ctx context.Context, client registerapi.RegistrationClient, registered bool, errStr string) error {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	_, err := client.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: registered, Error: errStr})
	switch {
	case err != nil && errStr != "":
		return fmt.Errorf("%s: %w", errStr, err)
	case err != nil:
		return err
	case errStr != "":
		return errors.New(errStr)
	}
	return nil
}
