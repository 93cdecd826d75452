// Package pluginmanager registers node plugins (CSI drivers, DRA drivers,
// device plugins) that announce themselves with a unix socket in the
// plugins_registry directory under berth's root directory, as upstream's
// plugin manager does (pluginregistration/v1).
//
// For every socket that appears there (in the directory or any directory
// below it; names starting with "." are ignored) berth calls the plugin's
// GetInfo, hands the answer to the Handler added for its type
// (ValidatePlugin, then RegisterPlugin) and tells the plugin the outcome
// with NotifyRegistrationStatus. A removed socket deregisters the plugin; a
// socket created again (the plugin restarted) deregisters the old one and
// registers the new one. At start-up the sockets already present are
// registered, so plugins that outlived a berth restart come back without
// doing anything. A failed registration is retried with upstream's back-off
// (0.5 s doubling to 2 min 2 s).
//
// Deciding is apart from doing: decide (pure) turns what the manager knows
// of each socket into operations; Run's loop feeds it file system events
// and results and runs the operations, each in a goroutine it owns.
package pluginmanager
