package redis

// initCluster sets up routing for Redis Cluster. Not yet implemented:
// cluster mode uses one connection per shard like standalone.
func (s *subscriptions) initCluster() int { return s.b.cfg.PubSubShards }

// moved is called when Redis unsubscribed a wanted channel on its own.
func (s *subscriptions) moved(string) {}
