/*
 * Integration: password_file and MQTT 5 enhanced authentication against a
 * real cicada.  Paho connects with 3.1.1 and 5.0 using right and wrong
 * passwords of each hash kind ($7$ and $6$ from mosquitto_passwd, a SCRAM
 * verifier) and without a user name.  Raw sockets run SCRAM-SHA-256
 * exchanges [MQTT-4.12] whose client side is computed here with wolfCrypt:
 * success (the server's signature is checked too), a wrong password, an
 * unknown method, another method in AUTH, packets other than AUTH before
 * CONNACK, re-authentication that succeeds, fails or changes user, AUTH
 * on a connection that did not use enhanced authentication, and
 * connect_timeout during an exchange.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define VERSION(i) ((i) == 0 ? 4 : 5)
#define WAIT_MS 3000
#define METHOD "SCRAM-SHA-256"

/*
 * u / p ($7$, mosquitto_passwd -b), v / p ($6$, -H sha512), RFC 7677's
 * user / pencil and bob / builder (SCRAM-SHA-256 verifiers).
 */
static const char passwd_text[] =
	"# test users\n"
	"u:$7$101$4cbgZ0RngIuDFPOK$pPQ8k+9bUxd2wEr04IjnGOxT2U60RAiCmRvUGUjv9pZ"
	"6vLN82azk0kh6Z6qmbAds0vWNruX+G/x0Ez3lxjrQOw==\n"
	"v:$6$WJz6y38i2Bl3Y6/G$ITczOpavsqrOOl1Tkjo7hki/5YkIXOEaU+PWC6gbDmwA7Si"
	"IDJEUIZCXsXpgPG1AsACcBCvBAm/U6kESKzywHw==\n"
	"\n"
	"user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7B"
	"keZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n"
	"bob:SCRAM-SHA-256$4096:Y2ljYWRhLWJvYi1zYWx0IQ==$YfLbQiGIcSHLRdl/ei5t/B"
	"97UPYWrlDAUNXsS54eueQ=:WnBzHA+olALLNRuGUIgoMF9b7zXWpDvB1lNu7zDWMD0=\n";

static struct broker_proc broker;
static char pwdir[64], pwfile[128];

static void write_passwd(const char *text)
{
	FILE *f;

	snprintf(pwdir, sizeof(pwdir), "/tmp/cicada-pw-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pwdir));
	snprintf(pwfile, sizeof(pwfile), "%s/passwd", pwdir);
	f = fopen(pwfile, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void start_with(const char *extra)
{
	char conf[512];

	write_passwd(passwd_text);
	snprintf(conf, sizeof(conf), "password_file %s\n%s", pwfile, extra);
	broker_start_checked(&broker, conf);
}

static void setup(void)
{
	start_with("allow_anonymous false\nconnect_timeout 2");
}

static void setup_anonymous(void)
{
	start_with("allow_anonymous true");
}

static void teardown(void)
{
	if (broker.pid > 0)
		ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
	unlink(pwfile);
	rmdir(pwdir);
}

/* ------------------------------------------------------------ Paho */

/*
 * Connect with Paho; returns the CONNACK code (3.1.1 return code or 5.0
 * reason; 0: connected, then disconnected again), or -1 on a client error.
 */
static int paho_connect(int version, const char *user, const char *pass)
{
	MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
	MQTTClient_connectOptions v3 = MQTTClient_connectOptions_initializer;
	MQTTClient_connectOptions v5 = MQTTClient_connectOptions_initializer5;
	MQTTClient_connectOptions *opts = version == 5 ? &v5 : &v3;
	MQTTClient c;
	int rc;

	co.MQTTVersion = version;
	ck_assert_int_eq(MQTTClient_createWithOptions(&c, broker.uri, "pc",
			 MQTTCLIENT_PERSISTENCE_NONE, NULL, &co),
			 MQTTCLIENT_SUCCESS);
	opts->MQTTVersion = version;
	opts->connectTimeout = 5;
	opts->username = user;
	opts->password = pass;
	if (version == 5) {
		MQTTResponse r = MQTTClient_connect5(c, opts, NULL, NULL);

		rc = (int)r.reasonCode;
		MQTTResponse_free(r);
	} else {
		rc = MQTTClient_connect(c, opts);
	}
	if (rc == 0 && version == 5)
		MQTTClient_disconnect5(c, 1000, MQTTREASONCODE_SUCCESS, NULL);
	else if (rc == 0)
		MQTTClient_disconnect(c, 1000);
	MQTTClient_destroy(&c);
	return rc < 0 ? -1 : rc;
}

/* Right passwords of each kind connect, with 3.1.1 and 5.0. */
START_TEST(test_password_ok)
{
	int v = VERSION(_i);

	ck_assert_int_eq(paho_connect(v, "u", "p"), 0);
	ck_assert_int_eq(paho_connect(v, "v", "p"), 0);
	ck_assert_int_eq(paho_connect(v, "user", "pencil"), 0);
	ck_assert(broker_wait_log(&broker, "user user", WAIT_MS));
}
END_TEST

/*
 * A wrong password, an unknown user or a user name without a password:
 * 0x86 Bad User Name or Password (3.1.1: 4) [MQTT-3.1.4-2 (5.0)].
 */
START_TEST(test_mqtt_3_1_4_2_password_wrong)
{
	int v = VERSION(_i), want = v == 5 ? 0x86 : 4;

	ck_assert_int_eq(paho_connect(v, "u", "q"), want);
	ck_assert_int_eq(paho_connect(v, "u", ""), want);
	ck_assert_int_eq(paho_connect(v, "v", "pp"), want);
	ck_assert_int_eq(paho_connect(v, "user", "pencil "), want);
	ck_assert_int_eq(paho_connect(v, "nobody", "p"), want);
	ck_assert_int_eq(paho_connect(v, "u", NULL), want);
	ck_assert(broker_log_contains(&broker, "wrong password"));
}
END_TEST

/* No user name and allow_anonymous false: 0x87 Not authorized (3.1.1: 5). */
START_TEST(test_mqtt_3_1_4_2_anonymous_refused)
{
	int v = VERSION(_i);

	ck_assert_int_eq(paho_connect(v, NULL, NULL), v == 5 ? 0x87 : 5);
}
END_TEST

/* allow_anonymous true: no user name is fine, a wrong password is not. */
START_TEST(test_anonymous_allowed)
{
	int v = VERSION(_i);

	ck_assert_int_eq(paho_connect(v, NULL, NULL), 0);
	ck_assert_int_eq(paho_connect(v, "u", "p"), 0);
	ck_assert_int_eq(paho_connect(v, "u", "x"), v == 5 ? 0x86 : 4);
}
END_TEST

/* A password file with a bad line stops the start, naming file:line. */
START_TEST(test_bad_password_file)
{
	char conf[256];

	write_passwd("u:$7$101$4cbgZ0RngIuDFPOK$pPQ8\n");
	snprintf(conf, sizeof(conf), "password_file %s\n", pwfile);
	ck_assert_int_ne(broker_start(&broker, conf), 0);
	ck_assert(broker_log_contains(&broker, ":1: $7$ hash: bad hash"));
	broker_remove_files(&broker);
	unlink(pwfile);
	rmdir(pwdir);
}
END_TEST

/* -------------------------------------------------------- SCRAM client */

struct scram_client {
	char user[64], pass[64];
	char cnonce[32];
	char first_bare[128];
	char final[512];
	uint8_t server_sig[32];
};

static void hmac256(const uint8_t *key, size_t klen, const void *msg,
		    size_t len, uint8_t out[32])
{
	Hmac h;

	ck_assert_int_eq(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
	ck_assert_int_eq(wc_HmacSetKey(&h, WC_SHA256, key, (word32)klen), 0);
	ck_assert_int_eq(wc_HmacUpdate(&h, msg, (word32)len), 0);
	ck_assert_int_eq(wc_HmacFinal(&h, out), 0);
	wc_HmacFree(&h);
}

static size_t b64(const uint8_t *in, size_t len, char *out, size_t cap)
{
	word32 n = (word32)cap - 1;

	ck_assert_int_eq(Base64_Encode_NoNl(in, (word32)len, (byte *)out, &n),
			 0);
	out[n] = '\0';
	return n;
}

/* client-first-message for user, with a fixed client nonce. */
static const char *scram_first(struct scram_client *s, const char *user,
			       const char *pass)
{
	static char msg[160];

	snprintf(s->user, sizeof(s->user), "%s", user);
	snprintf(s->pass, sizeof(s->pass), "%s", pass);
	snprintf(s->cnonce, sizeof(s->cnonce), "fyko+d2lbbFgONRv9qkxdawL");
	snprintf(s->first_bare, sizeof(s->first_bare), "n=%s,r=%s", user,
		 s->cnonce);
	snprintf(msg, sizeof(msg), "n,,%s", s->first_bare);
	return msg;
}

/* client-final-message for server-first sf[0..len). */
static const char *scram_final(struct scram_client *s, const uint8_t *sf,
			       size_t len)
{
	char server_first[256], *r, *salt64, *iter, auth[1024];
	uint8_t salt[64], salted[32], ck[32], stored[32], csig[32], proof[32];
	uint8_t sk[32];
	char proof64[64];
	word32 salt_len = sizeof(salt);
	size_t n;

	ck_assert_uint_lt(len, sizeof(server_first));
	memcpy(server_first, sf, len);
	server_first[len] = '\0';
	r = server_first;
	ck_assert(strncmp(r, "r=", 2) == 0);
	ck_assert(strncmp(r + 2, s->cnonce, strlen(s->cnonce)) == 0);
	salt64 = strstr(r, ",s=");
	iter = strstr(r, ",i=");
	ck_assert_ptr_nonnull(salt64);
	ck_assert_ptr_nonnull(iter);
	ck_assert_int_eq(Base64_Decode((const byte *)salt64 + 3,
				       (word32)(iter - salt64 - 3), salt,
				       &salt_len), 0);
	ck_assert_int_eq(wc_PBKDF2(salted, (const byte *)s->pass,
				   (int)strlen(s->pass), salt, (int)salt_len,
				   atoi(iter + 3), 32, WC_SHA256), 0);
	hmac256(salted, 32, "Client Key", 10, ck);
	ck_assert_int_eq(wc_Sha256Hash(ck, 32, stored), 0);
	/* client-final-message-without-proof: c=biws (n,,), r=nonce. */
	n = (size_t)snprintf(s->final, sizeof(s->final), "c=biws,r=%.*s",
			     (int)(salt64 - r - 2), r + 2);
	snprintf(auth, sizeof(auth), "%s,%s,%s", s->first_bare, server_first,
		 s->final);
	hmac256(stored, 32, auth, strlen(auth), csig);
	for (int i = 0; i < 32; i++)
		proof[i] = (uint8_t)(ck[i] ^ csig[i]);
	hmac256(salted, 32, "Server Key", 10, sk);
	hmac256(sk, 32, auth, strlen(auth), s->server_sig);
	b64(proof, 32, proof64, sizeof(proof64));
	snprintf(s->final + n, sizeof(s->final) - n, ",p=%s", proof64);
	return s->final;
}

/* The server-final-message must carry the server's signature. */
static void check_server_final(const struct scram_client *s,
			       const struct mqtt_bytes *data)
{
	char want[64] = "v=";

	b64(s->server_sig, 32, want + 2, sizeof(want) - 2);
	ck_assert_uint_eq(data->len, strlen(want));
	ck_assert_mem_eq(data->data, want, data->len);
}

/* --------------------------------------------------------- raw packets */

static void set_auth_props(struct mqtt_props *p, const char *method,
			   const char *data)
{
	p->authentication_method.data = (const uint8_t *)method;
	p->authentication_method.len = strlen(method);
	mqtt_props_set(p, MQTT_PROP_AUTHENTICATION_METHOD);
	if (data) {
		p->authentication_data.data = (const uint8_t *)data;
		p->authentication_data.len = strlen(data);
		mqtt_props_set(p, MQTT_PROP_AUTHENTICATION_DATA);
	}
}

static int open_raw(void)
{
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void send_connect_auth(int fd, const char *id, const char *method,
			      const char *data)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };

	raw_connect_init(&pkt.u.connect, MQTT_V5, id);
	set_auth_props(&pkt.u.connect.props, method, data);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
}

static void send_auth(int fd, uint8_t reason, const char *method,
		      const char *data)
{
	struct mqtt_packet pkt = { .type = MQTT_AUTH };

	pkt.u.disconnect.reason = reason;
	set_auth_props(&pkt.u.disconnect.props, method, data);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
}

/* The next packet is of this type (and reason); *pkt views buf. */
static void expect_packet(int fd, uint8_t *buf, size_t cap, int type,
			  int reason, struct mqtt_packet *pkt)
{
	int got = raw_recv_decoded(fd, buf, cap, WAIT_MS, MQTT_V5, pkt);

	ck_assert_int_eq(got, type);
	if (type == MQTT_CONNACK)
		ck_assert_int_eq(pkt->u.connack.reason, reason);
	else if (type == MQTT_AUTH || type == MQTT_DISCONNECT)
		ck_assert_int_eq(pkt->u.disconnect.reason, reason);
}

/* An AUTH or CONNACK names our method [MQTT-4.12.0-5]. */
static void expect_method(const struct mqtt_props *p)
{
	ck_assert(mqtt_props_has(p, MQTT_PROP_AUTHENTICATION_METHOD));
	ck_assert_uint_eq(p->authentication_method.len, strlen(METHOD));
	ck_assert_mem_eq(p->authentication_method.data, METHOD,
			 strlen(METHOD));
}

static void expect_closed(int fd)
{
	ck_assert(raw_wait_closed(fd, WAIT_MS));
}

/* A finished SCRAM exchange at CONNECT as user; returns the socket. */
static int scram_connect(struct scram_client *s, const char *id,
			 const char *user, const char *pass)
{
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = open_raw();

	send_connect_auth(fd, id, METHOD, scram_first(s, user, pass));
	/* [MQTT-4.12.0-2]: AUTH 0x18 with the server-first-message. */
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	expect_method(&pkt.u.disconnect.props);
	ck_assert(mqtt_props_has(&pkt.u.disconnect.props,
				 MQTT_PROP_AUTHENTICATION_DATA));
	/* [MQTT-4.12.0-3]: the client answers with AUTH 0x18. */
	send_auth(fd, 0x18, METHOD,
		  scram_final(s, pkt.u.disconnect.props.authentication_data.data,
			      pkt.u.disconnect.props.authentication_data.len));
	return fd;
}

/* The connection is usable: PINGREQ gets PINGRESP. */
static void expect_alive(int fd)
{
	static const uint8_t ping[] = { 0xC0, 0x00 };
	struct mqtt_packet pkt;
	uint8_t buf[64];

	ck_assert_int_eq(raw_send(fd, ping, sizeof(ping)), 0);
	expect_packet(fd, buf, sizeof(buf), MQTT_PINGRESP, 0, &pkt);
}

/*
 * MQTT-4.12.0-5: a successful exchange ends in CONNACK 0x00 with the same
 * method and the server-final-message, whose signature proves that the
 * server knows the verifier.
 */
START_TEST(test_mqtt_4_12_0_5_scram_success)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "scram-ok", "user", "pencil");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	expect_method(&pkt.u.connack.props);
	ck_assert(mqtt_props_has(&pkt.u.connack.props,
				 MQTT_PROP_AUTHENTICATION_DATA));
	check_server_final(&s, &pkt.u.connack.props.authentication_data);
	expect_alive(fd);
	ck_assert(broker_wait_log(&broker, "session new, user user", WAIT_MS));
	close(fd);
}
END_TEST

/* MQTT-4.12.0-4: a wrong password is refused with CONNACK 0x87, closed. */
START_TEST(test_mqtt_4_12_0_4_wrong_proof)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "scram-bad", "user", "pencil2");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
	ck_assert(broker_log_contains(&broker, "wrong password"));

	/* Unknown user: the same answer, only at the end. */
	fd = scram_connect(&s, "scram-who", "nobody", "pencil");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
	/* A user with a $7$ hash cannot do SCRAM: same again. */
	fd = scram_connect(&s, "scram-u", "u", "p");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* MQTT-4.12.0-1: an unsupported method gets CONNACK 0x8C, closed. */
START_TEST(test_mqtt_4_12_0_1_unknown_method)
{
	struct mqtt_packet pkt;
	uint8_t buf[256];
	int fd = open_raw();

	send_connect_auth(fd, "m", "SCRAM-SHA-1", "n,,n=user,r=abc");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x8C, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* MQTT-4.12.0-4: a bad client-first-message is refused at once (0x87). */
START_TEST(test_mqtt_4_12_0_4_bad_client_first)
{
	struct mqtt_packet pkt;
	uint8_t buf[256];
	int fd = open_raw();

	send_connect_auth(fd, "m", METHOD, "p=tls-unique,,n=user,r=abc");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
	fd = open_raw();
	send_connect_auth(fd, "m", METHOD, NULL);
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* MQTT-4.12.0-5: AUTH with another method than CONNECT's is 0x82. */
START_TEST(test_mqtt_4_12_0_5_method_mismatch)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = open_raw();

	send_connect_auth(fd, "mm", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	send_auth(fd, 0x18, "SCRAM-SHA-512", "c=biws,r=x,p=AAAA");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x82, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * MQTT-3.1.2-30: with an Authentication Method, nothing but AUTH or
 * DISCONNECT before CONNACK: a PINGREQ is a Protocol Error (CONNACK
 * 0x82); the client may give up with DISCONNECT (closed quietly); and
 * AUTH 0x19 is not Continue [MQTT-4.12.0-3].
 */
START_TEST(test_mqtt_3_1_2_30_only_auth_before_connack)
{
	static const uint8_t ping[] = { 0xC0, 0x00 };
	static const uint8_t disconnect[] = { 0xE0, 0x00 };
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = open_raw();

	send_connect_auth(fd, "o1", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	ck_assert_int_eq(raw_send(fd, ping, sizeof(ping)), 0);
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x82, &pkt);
	expect_closed(fd);
	close(fd);

	fd = open_raw();
	send_connect_auth(fd, "o2", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	ck_assert_int_eq(raw_send(fd, disconnect, sizeof(disconnect)), 0);
	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 0);
	close(fd);

	fd = open_raw();
	send_connect_auth(fd, "o3", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	send_auth(fd, 0x19, METHOD, "c=biws");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x82, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* connect_timeout (2 s here) covers the exchange: silence closes it. */
START_TEST(test_exchange_timeout)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = open_raw();
	struct timespec t0, t1;
	double secs;

	send_connect_auth(fd, "slow", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert(raw_wait_closed(fd, 5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(secs > 0.5 && secs < 4.5, "closed after %.2f s", secs);
	close(fd);
	ck_assert(broker_log_contains(&broker, "within connect_timeout"));
}
END_TEST

/* Run a re-authentication up to the client-final-message. */
static void reauth(int fd, struct scram_client *s, const char *user,
		   const char *pass, struct mqtt_packet *pkt, uint8_t *buf,
		   size_t cap)
{
	send_auth(fd, 0x19, METHOD, scram_first(s, user, pass));
	expect_packet(fd, buf, cap, MQTT_AUTH, 0x18, pkt);
	expect_method(&pkt->u.disconnect.props);
	send_auth(fd, 0x18, METHOD,
		  scram_final(s, pkt->u.disconnect.props.authentication_data.data,
			      pkt->u.disconnect.props.authentication_data.len));
}

/*
 * MQTT-4.12.1-1: after CONNACK the client re-authenticates with AUTH 0x19
 * and the same method; success is AUTH 0x00 with the server-final data,
 * and the connection goes on.  Twice, to see the state reset.
 */
START_TEST(test_mqtt_4_12_1_1_reauth_success)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "re-ok", "user", "pencil");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	for (int i = 0; i < 2; i++) {
		reauth(fd, &s, "user", "pencil", &pkt, buf, sizeof(buf));
		expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x00, &pkt);
		expect_method(&pkt.u.disconnect.props);
		check_server_final(&s,
				   &pkt.u.disconnect.props.authentication_data);
		expect_alive(fd);
	}
	close(fd);
}
END_TEST

/* MQTT-4.12.1-2: a failed re-authentication: DISCONNECT 0x87, closed. */
START_TEST(test_mqtt_4_12_1_2_reauth_failure)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "re-bad", "user", "pencil");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	reauth(fd, &s, "user", "wrong", &pkt, buf, sizeof(buf));
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* Re-authentication may not change who the connection is: 0x87. */
START_TEST(test_mqtt_4_12_1_2_reauth_other_user)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "re-bob", "user", "pencil");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	reauth(fd, &s, "bob", "builder", &pkt, buf, sizeof(buf));
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x87, &pkt);
	expect_closed(fd);
	close(fd);
	ck_assert(broker_log_contains(&broker, "as another user"));
	/* bob's verifier itself is good. */
	fd = scram_connect(&s, "bob", "bob", "builder");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	close(fd);
}
END_TEST

/*
 * MQTT-4.12.1-1: re-authentication must name the CONNECT's method;
 * another is a Protocol Error (DISCONNECT 0x82).  So is AUTH 0x18 with
 * no exchange running.
 */
START_TEST(test_mqtt_4_12_1_1_reauth_method_mismatch)
{
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = scram_connect(&s, "re-mm", "user", "pencil");

	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	send_auth(fd, 0x19, "SCRAM-SHA-1", scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x82, &pkt);
	expect_closed(fd);
	close(fd);

	fd = scram_connect(&s, "re-mm2", "user", "pencil");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	send_auth(fd, 0x18, METHOD, "c=biws");
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x82, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * MQTT-4.12.0-6: without an Authentication Method in CONNECT the CONNACK
 * has none; MQTT-4.12.0-7: such a client may not send AUTH at all, and
 * one that does gets DISCONNECT 0x82 Protocol Error.
 */
START_TEST(test_mqtt_4_12_0_7_auth_without_method)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	struct mqtt_connack ack;
	struct scram_client s;
	uint8_t buf[1024];
	int fd = open_raw();

	raw_connect_init(&pkt.u.connect, MQTT_V5, "plain");
	pkt.u.connect.username_flag = pkt.u.connect.password_flag = true;
	pkt.u.connect.username.data = (const uint8_t *)"user";
	pkt.u.connect.username.len = 4;
	pkt.u.connect.password.data = (const uint8_t *)"pencil";
	pkt.u.connect.password.len = 6;
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &pkt.u.connect, buf,
					     sizeof(buf), &ack), 0);
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_AUTHENTICATION_METHOD));
	send_auth(fd, 0x19, METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x82, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * MQTT-3.15.1-1: AUTH fixed-header flags other than 0000 are malformed;
 * MQTT-3.15.2-1: so is a reason that is not an Authenticate Reason Code.
 * Before CONNACK the answer is CONNACK 0x81, after it DISCONNECT 0x81.
 */
START_TEST(test_mqtt_3_15_malformed_auth)
{
	/* AUTH, flags 0001 / reason 0x01, no properties. */
	static const uint8_t bad_flags[] = { 0xF1, 0x02, 0x18, 0x00 };
	static const uint8_t bad_reason[] = { 0xF0, 0x02, 0x01, 0x00 };
	const uint8_t *bad = _i == 0 ? bad_flags : bad_reason;
	struct scram_client s;
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = open_raw();

	send_connect_auth(fd, "mal1", METHOD, scram_first(&s, "user", "pencil"));
	expect_packet(fd, buf, sizeof(buf), MQTT_AUTH, 0x18, &pkt);
	ck_assert_int_eq(raw_send(fd, bad, 4), 0);
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0x81, &pkt);
	expect_closed(fd);
	close(fd);

	fd = scram_connect(&s, "mal2", "user", "pencil");
	expect_packet(fd, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	ck_assert_int_eq(raw_send(fd, bad, 4), 0);
	expect_packet(fd, buf, sizeof(buf), MQTT_DISCONNECT, 0x81, &pkt);
	expect_closed(fd);
	close(fd);
}
END_TEST

/* A raw connection logged in with user and password at version v. */
static int password_connect(uint8_t v, const char *id, const char *user,
			    const char *pass)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int fd = open_raw();

	raw_connect_init(&c, v, id);
	c.username_flag = c.password_flag = true;
	c.username.data = (const uint8_t *)user;
	c.username.len = strlen(user);
	c.password.data = (const uint8_t *)pass;
	c.password.len = strlen(pass);
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 0);
	return fd;
}

/*
 * A user removed from the password file and a SIGHUP: that user's
 * connections go, MQTT 5 ones with DISCONNECT 0x98 Administrative action
 * and a Reason String naming the user; other users stay; the removed one
 * can no longer log in.
 */
START_TEST(test_removed_user_disconnected)
{
	struct scram_client sc;
	struct mqtt_packet pkt;
	uint8_t buf[512];
	int gone5 = password_connect(MQTT_V5, "gone5", "u", "p");
	int gone3 = password_connect(MQTT_V311, "gone3", "u", "p");
	int stays = password_connect(MQTT_V5, "stays", "v", "p");
	int scram = scram_connect(&sc, "scram", "user", "pencil");
	FILE *f;

	expect_packet(scram, buf, sizeof(buf), MQTT_CONNACK, 0, &pkt);
	f = fopen(pwfile, "w");
	ck_assert_ptr_nonnull(f);
	/* passwd_text without u's line (its first entry). */
	fputs(strchr(strstr(passwd_text, "u:$7$"), '\n') + 1, f);
	fclose(f);
	broker_signal(&broker, SIGHUP);
	ck_assert(broker_wait_log(&broker, "configuration reloaded", WAIT_MS));

	expect_packet(gone5, buf, sizeof(buf), MQTT_DISCONNECT,
		      MQTT_RC_ADMINISTRATIVE_ACTION, &pkt);
	ck_assert(mqtt_props_has(&pkt.u.disconnect.props,
				 MQTT_PROP_REASON_STRING));
	expect_closed(gone5);
	expect_closed(gone3);
	expect_alive(stays);
	expect_alive(scram);
	ck_assert(broker_log_contains(&broker, "gone5 "));
	ck_assert(broker_log_contains(&broker,
				      "user 'u' is no longer in the password"));
	ck_assert_int_eq(paho_connect(5, "u", "p"),
			 MQTT_RC_BAD_USER_NAME_OR_PASSWORD);
	close(gone5);
	close(gone3);
	close(stays);
	close(scram);
}
END_TEST

static TCase *tcase(const char *name, void (*setup_fn)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup_fn, teardown);
	tcase_set_timeout(tc, 20);
	return tc;
}

static Suite *auth_suite(void)
{
	Suite *s = suite_create("09-auth");
	TCase *tc = tcase("password_file", setup);

	tcase_add_loop_test(tc, test_password_ok, 0, 2);
	tcase_add_loop_test(tc, test_mqtt_3_1_4_2_password_wrong, 0, 2);
	tcase_add_loop_test(tc, test_mqtt_3_1_4_2_anonymous_refused, 0, 2);
	tcase_add_test(tc, test_removed_user_disconnected);
	suite_add_tcase(s, tc);

	tc = tcase("anonymous", setup_anonymous);
	tcase_add_loop_test(tc, test_anonymous_allowed, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_file");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_bad_password_file);
	suite_add_tcase(s, tc);

	tc = tcase("enhanced", setup);
	tcase_add_test(tc, test_mqtt_4_12_0_5_scram_success);
	tcase_add_test(tc, test_mqtt_4_12_0_4_wrong_proof);
	tcase_add_test(tc, test_mqtt_4_12_0_1_unknown_method);
	tcase_add_test(tc, test_mqtt_4_12_0_4_bad_client_first);
	tcase_add_test(tc, test_mqtt_4_12_0_5_method_mismatch);
	tcase_add_test(tc, test_mqtt_3_1_2_30_only_auth_before_connack);
	tcase_add_test(tc, test_exchange_timeout);
	tcase_add_loop_test(tc, test_mqtt_3_15_malformed_auth, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase("reauth", setup);
	tcase_add_test(tc, test_mqtt_4_12_1_1_reauth_success);
	tcase_add_test(tc, test_mqtt_4_12_1_2_reauth_failure);
	tcase_add_test(tc, test_mqtt_4_12_1_2_reauth_other_user);
	tcase_add_test(tc, test_mqtt_4_12_1_1_reauth_method_mismatch);
	tcase_add_test(tc, test_mqtt_4_12_0_7_auth_without_method);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
