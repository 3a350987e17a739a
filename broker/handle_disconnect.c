/*
 * PINGREQ and DISCONNECT from a client.  A normal DISCONNECT discards the
 * will [MQTT-3.14.4-3] unless MQTT 5 reason 0x04 asks for it; MQTT 5 may
 * also change the session expiry, but not from 0 [MQTT-3.14.2-2].
 */
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/session.h"

int handle_pingreq(struct conn *c)
{
	struct mqtt_packet pkt = { .type = MQTT_PINGRESP };

	conn_send(c, &pkt);
	return 0;
}

int handle_disconnect(struct conn *c, const struct mqtt_disconnect *p)
{
	struct session *s = c->session;

	if (mqtt_props_has(&p->props, MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
		if (s->expiry_interval == 0 &&
		    p->props.session_expiry_interval != 0)
			return conn_why(c, MQTT_RC_PROTOCOL_ERROR,
					"Session Expiry Interval changed from 0 on DISCONNECT");
		s->expiry_interval = p->props.session_expiry_interval;
	}
	c->will_suppressed = p->reason != MQTT_RC_DISCONNECT_WITH_WILL;
	conn_close(c, -1, p->reason ? mqtt_rc_str(p->reason) :
				      "client sent DISCONNECT");
	return 0;
}
