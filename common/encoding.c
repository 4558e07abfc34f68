#include "common/encoding.h"

#include <string.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

int base64_encode(const void *data, size_t len, char *out, size_t out_cap)
{
	const unsigned char *in = data;
	size_t need = base64_encoded_len(len);
	if (out_cap < need + 1)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

static int b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

int base64_decode(const char *in, size_t in_len, unsigned char *out, size_t out_cap)
{
	while (in_len && in[in_len - 1] == '=')
		in_len--;
	if (in_len % 4 == 1)
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < in_len; i++) {
		int v = b64val(in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= out_cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (int)o;
}

int url_encode(const char *in, size_t in_len, char *out, size_t out_cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (plain) {
			if (o + 1 >= out_cap)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= out_cap)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= out_cap)
		return -1;
	out[o] = '\0';
	return (int)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int url_decode(const char *in, size_t in_len, char *out, size_t out_cap, bool plus_is_space)
{
	size_t o = 0;
	for (size_t i = 0; i < in_len; i++) {
		char c = in[i];
		if (c == '%') {
			if (i + 2 >= in_len)
				return -1;
			int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			if (c == '\0')
				return -1;
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		} else if (c == '\0') {
			return -1;
		}
		if (o + 1 >= out_cap)
			return -1;
		out[o++] = c;
	}
	if (o >= out_cap)
		return -1;
	out[o] = '\0';
	return (int)o;
}
