/**
 * mqtt-packet (under both MQTT.js and Aedes, one copy per process) builds a cache of 65,536 two-byte
 * Buffers on its first write: 6 MB of heap, a tenth of the idle agent (issue 17, footprint). The agent
 * writes a few packets a minute; allocating those two bytes per write costs nothing it would notice.
 * MQTT.js turns the cache off for its own client (`writeCache: false` in connect.ts), but a subscriber
 * that reaches the embedded broker before the agent's client exists makes Aedes write first: so the agent
 * turns it off for the process before the broker starts.
 */
import mqttPacket from 'mqtt-packet';

export function disablePacketNumberCache(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}
