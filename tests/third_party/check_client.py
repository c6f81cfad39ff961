"""Drive `respond sim serve` with an unmodified, widely used Binance client library.

Usage: check_client.py --client python-binance|binance-connector|ccxt --url URL --scenario FILE

The scenario's leaked key (the first key in the file) is read from the YAML with a regular
expression, so no YAML package is needed. Every check prints one line; any failure raises
and exits non-zero. Only loopback is ever contacted: the URL must be http://127.0.0.1:PORT.
"""

import argparse
import re
import sys
import time
from decimal import Decimal

CHECKS = []


def check(name, condition, detail=""):
    CHECKS.append(name)
    if not condition:
        raise AssertionError(f"FAILED: {name} {detail}")
    print(f"ok   {name}")


def first_key(scenario_path):
    text = open(scenario_path, encoding="utf-8").read()
    api_key = re.search(r"^\s*api_key:\s*([A-Za-z0-9]{64})\s*$", text, re.M).group(1)
    secret = re.search(r"^\s*secret:\s*([A-Za-z0-9]{64})\s*$", text, re.M).group(1)
    return api_key, secret


def python_binance(url, api_key, secret):
    from binance.client import Client
    from binance.exceptions import BinanceAPIException

    def client(key, sec):
        # ping=False: the constructor would otherwise ping api.binance.com before we
        # get the chance to point it at the simulator.
        c = Client(key, sec, ping=False)
        c.API_URL = url + "/api"
        c.MARGIN_API_URL = url + "/sapi"
        c.FUTURES_URL = url + "/fapi"
        c.FUTURES_COIN_URL = url + "/dapi"
        return c

    c = client(api_key, secret)
    check("ping", c.ping() == {})
    server_time = c.get_server_time()["serverTime"]
    check("server time within 5 s", abs(server_time - time.time() * 1000) < 5000)
    info = c.get_exchange_info()
    check("exchangeInfo lists XYZBTC", any(s["symbol"] == "XYZBTC" for s in info["symbols"]))
    check("exchangeInfo has rateLimits", info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT")
    price = Decimal(c.get_symbol_ticker(symbol="BTCUSDT")["price"])
    check("ticker near 64000", abs(price - 64000) < 1000, price)
    klines = c.get_klines(symbol="XYZBTC", interval="1m", limit=5)
    check("5 klines with string prices", len(klines) == 5 and isinstance(klines[0][4], str))

    # Balances.
    account = c.get_account()
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
    check("spot BTC balance 0.42", balances.get("BTC") == Decimal("0.42"), balances)
    check("the account holds XYZ", balances.get("XYZ", 0) > 0, balances)
    check("get_asset_balance", Decimal(c.get_asset_balance(asset="USDT")["free"]) > 0)
    perms = c.get_account_api_permissions()
    check("key can withdraw, no IP restriction", perms["enableWithdrawals"] and not perms["ipRestrict"], perms)

    # Open orders: list, cancel one, cancel the rest per symbol.
    started = int(time.time() * 1000)
    orders = c.get_open_orders()
    symbols = sorted({o["symbol"] for o in orders})
    check("spot open orders on 3 symbols", symbols == ["BTCUSDT", "ETHUSDT", "XYZBTC"], symbols)
    one = c.get_open_orders(symbol="ETHUSDT")[0]
    cancelled = c.cancel_order(symbol="ETHUSDT", orderId=one["orderId"])
    check("cancel_order", cancelled["status"] == "CANCELED" and cancelled["orderId"] == one["orderId"])
    fetched = c.get_order(symbol="ETHUSDT", orderId=one["orderId"])
    check("get_order shows it cancelled", fetched["status"] == "CANCELED")
    for symbol in ["BTCUSDT", "XYZBTC"]:
        result = c.cancel_all_open_orders(symbol=symbol)
        check(f"cancel_all_open_orders {symbol}", all(r["status"] == "CANCELED" for r in result))
    try:
        c.cancel_all_open_orders(symbol="BTCUSDT")
        check("cancel-all with nothing open answers -2011", False)
    except BinanceAPIException as e:
        check("cancel-all with nothing open answers -2011", e.code == -2011 and e.status_code == 400, e)
    # The scenario's attacker keeps placing XYZBTC orders: anything open now is newer.
    left = c.get_open_orders()
    check("only orders placed after the cancel remain",
          all(o["symbol"] == "XYZBTC" and o["time"] >= started for o in left), left)

    # Trades.
    trades = c.get_my_trades(symbol="XYZBTC")
    check("4 XYZBTC trades", len(trades) == 4, len(trades))
    check("XYZBTC trades are buys far above the market",
          all(t["isBuyer"] and Decimal(t["price"]) > Decimal("0.0000080") for t in trades))
    first = c.get_my_trades(symbol="BTCUSDT", fromId=0, limit=1)
    check("first BTCUSDT trade via fromId=0", len(first) == 1)
    day = 24 * 3600 * 1000
    try:
        c.get_my_trades(symbol="BTCUSDT", startTime=started - 3 * day, endTime=started)
        check("myTrades over 24 h answers -1127", False)
    except BinanceAPIException as e:
        check("myTrades over 24 h answers -1127", e.code == -1127, e)

    # Withdrawals, deposits, transfers.
    withdrawals = c.get_withdraw_history()
    check("2 withdrawals", len(withdrawals) == 2, withdrawals)
    theft = [w for w in withdrawals if w["address"].startswith("TXunknown")]
    check("the unknown USDT withdrawal", len(theft) == 1 and theft[0]["coin"] == "USDT"
          and theft[0]["amount"] == "4800" and theft[0]["status"] == 6
          and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", theft[0]["applyTime"]), theft)
    deposits = c.get_deposit_history()
    check("2 deposits", len(deposits) == 2 and isinstance(deposits[0]["insertTime"], int), deposits)
    transfers = c.query_universal_transfer_history(type="MAIN_UMFUTURE")
    check("universal transfer", transfers["total"] == 1 and transfers["rows"][0]["asset"] == "USDT", transfers)

    # Margin.
    margin = c.get_open_margin_orders()
    check("1 margin open order", len(margin) == 1, margin)
    m = c.cancel_margin_order(symbol=margin[0]["symbol"], orderId=margin[0]["orderId"])
    check("cancel_margin_order", m["status"] == "CANCELED")
    check("margin account", any(a["asset"] == "USDT" for a in c.get_margin_account()["userAssets"]))

    # USDⓈ-M futures, including the conditional (algo) order.
    fut = c.futures_get_open_orders()
    check("1 USDⓈ-M open order", len(fut) == 1 and "positionSide" in fut[0] and "cumQuote" in fut[0], fut)
    algo = c.futures_get_open_algo_orders()
    check("1 USDⓈ-M algo order", len(algo) == 1 and algo[0]["orderType"] == "STOP_MARKET", algo)
    done = c.futures_cancel_all_open_orders(symbol="BTCUSDT")
    check("futures cancel-all", done["code"] == 200, done)
    check("USDⓈ-M open orders gone", c.futures_get_open_orders() == [])
    fbal = {b["asset"]: b for b in c.futures_account_balance()}
    check("USDⓈ-M USDT balance", Decimal(fbal["USDT"]["balance"]) == 3000, fbal)
    positions = [p for p in c.futures_position_information() if Decimal(p["positionAmt"]) != 0]
    check("one open USDⓈ-M position", len(positions) == 1, positions)
    check("USDⓈ-M trades", len(c.futures_account_trades(symbol="BTCUSDT")) == 1)

    # COIN-M futures.
    coin = c.futures_coin_get_open_orders()
    check("1 COIN-M open order", len(coin) == 1 and "cumBase" in coin[0], coin)
    c.futures_coin_cancel_all_open_orders(symbol="BTCUSD_PERP")
    check("COIN-M open orders gone", c.futures_coin_get_open_orders() == [])
    check("COIN-M balance", any(b["asset"] == "BTC" for b in c.futures_coin_account_balance()))

    # Errors reach the library as Binance errors with their codes.
    try:
        client(api_key, secret[::-1]).get_account()
        check("wrong secret answers -1022", False)
    except BinanceAPIException as e:
        check("wrong secret answers -1022", e.code == -1022, e)
    try:
        client("A" * 64, secret).get_account()
        check("unknown key answers -2015", False)
    except BinanceAPIException as e:
        check("unknown key answers -2015", e.code == -2015 and e.status_code == 401, e)


def binance_connector(url, api_key, secret):
    from binance.error import ClientError
    from binance.spot import Spot

    c = Spot(api_key=api_key, api_secret=secret, base_url=url)
    check("ping", c.ping() == {})
    check("time", c.time()["serverTime"] > 0)
    check("exchange_info", len(c.exchange_info()["symbols"]) >= 4)

    account = c.account()
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
    check("spot BTC balance 0.42", balances.get("BTC") == Decimal("0.42"), balances)
    perms = c.api_key_permissions()
    check("key permissions", perms["enableWithdrawals"] and perms["enableSpotAndMarginTrading"], perms)
    check("coin_info lists USDT", any(x["coin"] == "USDT" for x in c.coin_info()))

    started = int(time.time() * 1000)
    orders = c.get_open_orders()
    check("spot open orders", len(orders) >= 3, orders)
    one = c.get_open_orders(symbol="ETHUSDT")[0]
    check("cancel_order", c.cancel_order(symbol="ETHUSDT", orderId=one["orderId"])["status"] == "CANCELED")
    for symbol in ["BTCUSDT", "XYZBTC"]:
        c.cancel_open_orders(symbol=symbol)
    left = c.get_open_orders()
    check("only orders placed after the cancel remain",
          all(o["symbol"] == "XYZBTC" and o["time"] >= started for o in left), left)

    trades = c.my_trades(symbol="XYZBTC")
    check("4 XYZBTC trades", len(trades) == 4, trades)
    withdrawals = c.withdraw_history()
    check("2 withdrawals", len(withdrawals) == 2 and isinstance(withdrawals[0]["id"], str), withdrawals)
    deposits = c.deposit_history()
    check("2 deposits", len(deposits) == 2, deposits)
    transfers = c.user_universal_transfer_history(type="MAIN_UMFUTURE")
    check("universal transfer", transfers["total"] == 1, transfers)
    margin = c.margin_open_orders()
    check("1 margin open order", len(margin) == 1, margin)
    cancelled = c.margin_open_orders_cancellation(symbol=margin[0]["symbol"])
    check("margin cancel-all", cancelled[0]["isIsolated"] is False, cancelled)

    # Weight headers reach the connector (it keeps x-mbx-used-weight* headers).
    shown = Spot(api_key=api_key, api_secret=secret, base_url=url, show_limit_usage=True).time()
    check("weight headers", any(k.lower().startswith("x-mbx-used-weight") for k in shown["limit_usage"]), shown)

    try:
        Spot(api_key=api_key, api_secret=secret[::-1], base_url=url).account()
        check("wrong secret answers -1022", False)
    except ClientError as e:
        check("wrong secret answers -1022", e.error_code == -1022 and e.status_code == 400, e)


def ccxt_binance(url, api_key, secret):
    import ccxt

    def exchange(sec):
        ex = ccxt.binance({"apiKey": api_key, "secret": sec, "enableRateLimit": False})
        # Point every Binance host ccxt knows at the simulator (configuration, not a patch).
        for name, value in list(ex.urls["api"].items()):
            ex.urls["api"][name] = re.sub(r"^https://[a-z]+\.binance\.com", url, value)
        return ex

    ex = exchange(secret)
    markets = ex.load_markets()
    check("load_markets: spot, linear and inverse",
          markets["XYZ/BTC"]["spot"] and markets["BTC/USDT:USDT"]["linear"]
          and markets["BTC/USD:BTC"]["inverse"], sorted(markets))
    check("currencies from capital/config/getall", "USDT" in ex.currencies)

    balance = ex.fetch_balance()
    check("spot BTC balance 0.42", balance["total"]["BTC"] == 0.42, balance["total"])
    check("the account holds XYZ", balance["total"].get("XYZ", 0) > 0)
    futures = ex.fetch_balance({"type": "future"})
    check("USDⓈ-M balance", futures["total"]["USDT"] == 3000, futures["total"])

    started = int(time.time() * 1000)
    for symbol in ["BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"]:
        open_orders = ex.fetch_open_orders(symbol)
        check(f"one open order on {symbol}", len(open_orders) == 1 and open_orders[0]["symbol"] == symbol,
              open_orders)
        ex.cancel_all_orders(symbol)
        check(f"none left on {symbol}", ex.fetch_open_orders(symbol) == [])
    left = ex.fetch_open_orders("XYZ/BTC")
    ex.cancel_all_orders("XYZ/BTC")
    check("XYZ/BTC cancelled", all(o["timestamp"] >= started for o in ex.fetch_open_orders("XYZ/BTC")), left)

    trades = ex.fetch_my_trades("XYZ/BTC")
    check("4 XYZ/BTC trades", len(trades) == 4, trades)
    first = trades[0]
    candle = ex.fetch_ohlcv("XYZ/BTC", "1m", since=first["timestamp"] // 60000 * 60000, limit=1)[0]
    check("first trade about 4x the market price of its minute", first["price"] / candle[4] > 4,
          (first["price"], candle))
    withdrawals = ex.fetch_withdrawals()
    theft = [w for w in withdrawals if w["address"].startswith("TXunknown")]
    check("the unknown withdrawal", len(withdrawals) == 2 and len(theft) == 1
          and theft[0]["status"] == "ok" and theft[0]["amount"] == 4800, withdrawals)
    check("2 deposits", len(ex.fetch_deposits()) == 2)
    positions = [p for p in ex.fetch_positions() if p["contracts"]]
    check("one USDⓈ-M position", len(positions) == 1 and positions[0]["symbol"] == "BTC/USDT:USDT",
          positions)

    try:
        exchange(secret[::-1]).fetch_balance()
        check("wrong secret is an authentication error", False)
    except ccxt.AuthenticationError as e:
        check("wrong secret is an authentication error", "-1022" in str(e), e)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["python-binance", "binance-connector", "ccxt"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", required=True)
    args = parser.parse_args()
    if not re.match(r"^http://127\.0\.0\.1:\d+$", args.url):
        sys.exit(f"refusing to test anything but a loopback simulator: {args.url}")
    api_key, secret = first_key(args.scenario)
    start = time.time()
    clients = {
        "python-binance": python_binance,
        "binance-connector": binance_connector,
        "ccxt": ccxt_binance,
    }
    clients[args.client](args.url, api_key, secret)
    print(f"{len(CHECKS)} passed, 0 failed ({args.client}, {time.time() - start:.1f}s)")


if __name__ == "__main__":
    main()
