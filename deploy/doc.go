// Package deploy holds no code: its folder carries the deployment files
// (systemd/, docker/, k8s/, walrus-req) and its tests check them against
// the node binary. The tests parse every file, build walrus exactly as the
// Dockerfile does, compare every flag the files pass with `walrus --help`,
// check the port layout, and start real 3-node clusters with the commands
// the compose file and the Kubernetes manifest give (on loopback).
// docs/configuration.md and docs/operations.md are checked the same way.
package deploy
