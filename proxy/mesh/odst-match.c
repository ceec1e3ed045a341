/* Original-destination dispatch, the pure part (see odst.h): unit-tested
 * without sockets or threads. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "config/cfg-t.h"
#include "mesh/odst.h"

#define SNIFF_BYTES		24	/* longest method we wait for, plus the space */

enum odst_proto odst_sniff(const char *buf, size_t len)
{
	if (len && buf[0] == 0x16)
		return ODST_TLS;	/* a TLS handshake record: ClientHello */
	for (size_t i = 0; i < len && i < SNIFF_BYTES; i++) {
		char c = buf[i];

		if (c == ' ')
			return i ? ODST_HTTP : ODST_OTHER;
		if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
			return ODST_OTHER;
	}
	return len >= SNIFF_BYTES ? ODST_OTHER : ODST_MORE;
}

bool odst_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
		       sizeof(struct in6_addr));
}

bool odst_any_ip(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &in6addr_any, sizeof(struct in6_addr));
}

uint16_t odst_port(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

const struct cfg_listener *odst_find_listener(const struct cfg *cfg, const struct cfg_listener *from,
					      const struct sockaddr *orig)
{
	const struct cfg_listener *wildcard = NULL;

	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		const struct sockaddr *la = (const struct sockaddr *)&l->addr.ss;

		if (l->bind_to_port || l->original_dst || la->sa_family != orig->sa_family ||
		    odst_port(la) != odst_port(orig))
			continue;
		if (from->direction != DIR_UNSPECIFIED && l->direction != DIR_UNSPECIFIED &&
		    l->direction != from->direction)
			continue;
		if (odst_same_ip(la, orig))
			return l;
		if (odst_any_ip(la) && !wildcard)
			wildcard = l;
	}
	return wildcard;
}

